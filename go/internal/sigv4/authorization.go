// Package sigv4 verifies AWS Signature Version 4 as S3 clients send it. The
// proxy recomputes exactly what the client signed (its signed headers, its
// region, its payload hash), so it canonicalises the request itself rather
// than asking a signer to choose headers.
package sigv4

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// Algorithm is the only signing algorithm the proxy accepts.
const Algorithm = "AWS4-HMAC-SHA256"

const (
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
	scopeTerminator = "aws4_request"
)

// Scope is the credential scope: date/region/service/aws4_request.
type Scope struct {
	Date    string // yyyymmdd
	Region  string
	Service string
}

func (s Scope) String() string { return string(s.append(nil)) }

// append appends the scope, date/region/service/aws4_request, to b.
func (s Scope) append(b []byte) []byte {
	b = append(b, s.Date...)
	b = append(b, '/')
	b = append(b, s.Region...)
	b = append(b, '/')
	b = append(b, s.Service...)
	b = append(b, '/')
	return append(b, scopeTerminator...)
}

// Credential is what a client claims in its Authorization header or
// presigned query: who it is, when and how it signed.
type Credential struct {
	AccessKey     string
	Scope         Scope
	SignedHeaders []string // lower case, in the client's order
	Signature     string   // lower-case hex
	Time          time.Time
	AmzDate       string // the x-amz-date text exactly as signed
}

// ParseAuthorization parses an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
//	SignedHeaders=host;x-amz-date, Signature=abcd...
//
// The time is not known from the header; the caller fills it from x-amz-date.
func ParseAuthorization(header string) (Credential, error) {
	var c Credential
	if IsSigV2Header(header) {
		return c, errSigV2()
	}
	// S3's answers, in its words: InvalidArgument naming the header.
	alg, rest, ok := strings.Cut(header, " ")
	if !ok {
		return c, s3err.Newf(s3err.ErrInvalidArgument, "Authorization header is invalid -- one and only one ' ' (space) required.").
			With("ArgumentName", "Authorization").With("ArgumentValue", truncate(header))
	}
	if alg != Algorithm {
		return c, s3err.Newf(s3err.ErrInvalidArgument, "Unsupported Authorization Type").
			With("ArgumentName", "Authorization").With("ArgumentValue", truncate(alg))
	}
	// S3 wants exactly three components; naming the one missing (an
	// unknown name in its place) tells a client what to fix.
	var parts [3]string
	if !splitExactly(parts[:], rest, ",") {
		return c, malformedText("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	var haveCred, haveHeaders, haveSig, sigGiven bool
	var names [len(parts)]string
	for i, part := range parts {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return c, malformed("the authorization component %q is malformed", truncate(part))
		}
		// Which one would count? S3 refuses too. (Three names: looking
		// through those before is all the search there is.)
		if slices.Contains(names[:i], name) {
			return c, malformed("the authorization component %q appears more than once", truncate(name))
		}
		names[i] = name
		switch name {
		case "Credential":
			cred, problem := parseCredential(value)
			if problem != "" {
				return c, malformedText(problem)
			}
			c.AccessKey, c.Scope = cred.AccessKey, cred.Scope
			haveCred = true
		case "SignedHeaders":
			c.SignedHeaders = strings.Split(value, ";")
			haveHeaders = value != ""
		case "Signature":
			c.Signature = value
			sigGiven = value != ""
			haveSig = isLowerHex(value, 64)
		}
	}
	switch {
	case !haveCred:
		return c, malformedText("missing Credential.")
	case !haveHeaders:
		return c, malformedText("missing SignedHeaders.")
	case !sigGiven:
		return c, malformedText("missing Signature.")
	case !haveSig:
		return c, malformed("the Signature is not 64 lower-case hex digits")
	}
	return c, nil
}

type accessKeyScope struct {
	AccessKey string
	Scope     Scope
}

// parseCredential splits "AK/20130524/us-east-1/s3/aws4_request". Access
// keys never contain '/', so splitting from the left is exact. A credential
// S3 would refuse comes back with the problem in S3's words (which the
// caller puts after its own prefix: the header's or the query's), checked
// in S3's order: the parts, the service, the terminator, the date.
func parseCredential(v string) (out accessKeyScope, problem string) {
	var parts [5]string
	if !splitExactly(parts[:], v, "/") || parts[0] == "" {
		return out, `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`
	}
	if parts[3] != "s3" {
		return out, fmt.Sprintf(`incorrect service %q. This endpoint belongs to "s3".`, truncate(parts[3]))
	}
	if parts[4] != scopeTerminator {
		return out, fmt.Sprintf(`incorrect terminal %q. This endpoint uses "aws4_request".`, truncate(parts[4]))
	}
	if _, _, _, ok := parseScopeDate(parts[1]); !ok {
		return out, fmt.Sprintf(`incorrect date format %q. This date in the credential must be in the format "yyyyMMdd".`, truncate(parts[1]))
	}
	if parts[2] == "" {
		return out, "the Credential has an empty region."
	}
	out.AccessKey = parts[0]
	out.Scope = Scope{Date: parts[1], Region: parts[2], Service: parts[3]}
	return out, ""
}

// splitExactly splits s around sep into parts, as strings.Split would
// without allocating, if s has exactly len(parts) of them.
func splitExactly(parts []string, s, sep string) bool {
	last := len(parts) - 1
	for i := range parts[:last] {
		var found bool
		if parts[i], s, found = strings.Cut(s, sep); !found {
			return false
		}
	}
	parts[last] = s
	return !strings.Contains(s, sep)
}

// IsSigV2Header reports whether an Authorization header uses Signature
// Version 2 ("AWS access:signature").
func IsSigV2Header(header string) bool {
	return strings.HasPrefix(header, "AWS ")
}

func errSigV2() error {
	return s3err.Newf(s3err.ErrInvalidRequest, "The authorization mechanism you have provided is not supported. Please use %s.", Algorithm)
}

func malformed(format string, args ...any) error {
	return s3err.Newf(s3err.ErrAuthorizationHeaderMalformed, "The authorization header is malformed; "+format+".", args...)
}

// malformedText is malformed with a finished sentence of S3's.
func malformedText(text string) error {
	return s3err.Newf(s3err.ErrAuthorizationHeaderMalformed, "%s", "The authorization header is malformed; "+text)
}

// truncate keeps client-supplied text in error messages short.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		// c-'0' and c-'a' wrap around below their range: one comparison
		// each.
		if c := s[i]; c-'0' > 9 && c-'a' > 5 {
			return false
		}
	}
	return true
}
