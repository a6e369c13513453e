package sigv4

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// The header-auth parsers as they were before they were made
// allocation-free: the references of the differential fuzz targets
// (FuzzParseAuthorization, FuzzParseHeaderAuth, FuzzPresignedQuery), which insist that the
// rewrite takes the same decisions, in the same words.

func referenceParseHeaderAuth(r *http.Request) (HeaderAuth, error) {
	var a HeaderAuth
	if len(r.Header["Authorization"]) > 1 {
		return a, malformed("the Authorization header appears more than once")
	}
	for _, name := range [...]string{"X-Amz-Date", "X-Amz-Content-Sha256"} {
		if len(r.Header[name]) > 1 {
			return a, s3err.Newf(s3err.ErrInvalidArgument, "The %s header appears more than once.", strings.ToLower(name))
		}
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		return a, s3err.Newf(s3err.ErrAccessDenied, "Anonymous access is forbidden; sign requests with %s.", Algorithm)
	}
	cred, err := referenceParseAuthorization(header)
	if err != nil {
		return a, err
	}
	a.Credential = cred
	a.AmzDate = r.Header.Get("X-Amz-Date")
	if a.AmzDate == "" {
		return a, s3err.Newf(s3err.ErrAccessDenied, "AWS authentication requires a valid Date or x-amz-date header.")
	}
	a.Time, err = time.Parse(amzDateFormat, a.AmzDate)
	if err != nil {
		return a, s3err.Newf(s3err.ErrAccessDenied, "AWS authentication requires a valid Date or x-amz-date header.")
	}
	if a.Scope.Date != a.AmzDate[:8] {
		return a, malformed("the Credential date %s is not the date of x-amz-date %s", a.Scope.Date, a.AmzDate)
	}
	a.Payload = PayloadMode(r.Header.Get("X-Amz-Content-Sha256"))
	if a.Payload == "" {
		return a, s3err.Newf(s3err.ErrInvalidRequest, "Missing required header for this request: x-amz-content-sha256.")
	}
	if !referenceValid(a.Payload) {
		return a, s3err.Newf(s3err.ErrInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.").
			With("ArgumentName", "x-amz-content-sha256").With("ArgumentValue", truncate(string(a.Payload)))
	}
	return a, nil
}

func referenceParseAuthorization(header string) (Credential, error) {
	var c Credential
	if IsSigV2Header(header) {
		return c, errSigV2()
	}
	alg, rest, ok := strings.Cut(header, " ")
	if !ok {
		return c, s3err.Newf(s3err.ErrInvalidArgument, "Authorization header is invalid -- one and only one ' ' (space) required.").
			With("ArgumentName", "Authorization").With("ArgumentValue", truncate(header))
	}
	if alg != Algorithm {
		return c, s3err.Newf(s3err.ErrInvalidArgument, "Unsupported Authorization Type").
			With("ArgumentName", "Authorization").With("ArgumentValue", truncate(alg))
	}
	parts := strings.Split(rest, ",")
	if len(parts) != 3 {
		return c, malformedText("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	var haveCred, haveHeaders, haveSig, sigGiven bool
	seen := map[string]bool{}
	for _, part := range parts {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return c, malformed("the authorization component %q is malformed", truncate(part))
		}
		if seen[name] {
			return c, malformed("the authorization component %q appears more than once", truncate(name))
		}
		seen[name] = true
		switch name {
		case "Credential":
			cred, problem := referenceParseCredential(value)
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
			haveSig = referenceIsLowerHex(value, 64)
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

func referenceParseCredential(v string) (out accessKeyScope, problem string) {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[0] == "" {
		return out, `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`
	}
	if parts[3] != "s3" {
		return out, fmt.Sprintf(`incorrect service %q. This endpoint belongs to "s3".`, truncate(parts[3]))
	}
	if parts[4] != scopeTerminator {
		return out, fmt.Sprintf(`incorrect terminal %q. This endpoint uses "aws4_request".`, truncate(parts[4]))
	}
	if _, err := time.Parse(scopeDateFormat, parts[1]); err != nil {
		return out, fmt.Sprintf(`incorrect date format %q. This date in the credential must be in the format "yyyyMMdd".`, truncate(parts[1]))
	}
	if parts[2] == "" {
		return out, "the Credential has an empty region."
	}
	out.AccessKey = parts[0]
	out.Scope = Scope{Date: parts[1], Region: parts[2], Service: parts[3]}
	return out, ""
}

func referenceParsePresigned(q url.Values) (PresignAuth, error) {
	var a PresignAuth
	// Each parameter given once (a second copy would be a second reading),
	// then each checked, in S3's order and words.
	for _, p := range []string{queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature} {
		if len(q[p]) != 1 || q.Get(p) == "" {
			return a, queryError("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	switch q.Get(queryAlgorithm) {
	case Algorithm:
	case "AWS4-ECDSA-P256-SHA256": // SigV4a: S3's, not the proxy's
		return a, queryError(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
	default:
		return a, queryError(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256 and AWS4-ECDSA-P256-SHA256"`)
	}
	cred, problem := referenceParseCredential(q.Get(queryCredential))
	if problem != "" {
		return a, queryError("Error parsing the X-Amz-Credential parameter; " + problem)
	}
	a.AccessKey, a.Scope = cred.AccessKey, cred.Scope
	a.AmzDate = q.Get(queryDate)
	var err error
	if a.Time, err = time.Parse(amzDateFormat, a.AmzDate); err != nil {
		return a, queryError(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	if a.Scope.Date != a.AmzDate[:8] {
		return a, queryError(fmt.Sprintf("Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", a.Scope.Date, a.AmzDate[:8]))
	}
	seconds, err := strconv.ParseInt(q.Get(queryExpires), 10, 64)
	switch {
	case err != nil:
		return a, queryError("X-Amz-Expires should be a number")
	case seconds < 0:
		return a, queryError("X-Amz-Expires must be non-negative")
	case seconds == 0:
		return a, queryError("X-Amz-Expires must be at least 1 (second)")
	case seconds > int64(MaxPresignExpiry/time.Second):
		return a, queryError("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	a.Expires = time.Duration(seconds) * time.Second
	a.SignedHeaders = strings.Split(q.Get(querySignedHeaders), ";")
	a.Signature = q.Get(querySignature)
	if !referenceIsLowerHex(a.Signature, 64) {
		// S3 (and versitygw) answer a signature of the wrong form as one
		// that does not match, not as a malformed query.
		return a, signatureMismatch()
	}
	a.Payload = UnsignedPayload
	if values, ok := q[queryContentSHA256]; ok {
		if len(values) != 1 || !referenceValid(PayloadMode(values[0])) {
			return a, s3err.Newf(s3err.ErrInvalidArgument, "X-Amz-Content-Sha256 must be given once, as UNSIGNED-PAYLOAD or a valid sha256 value.")
		}
		a.Payload = PayloadMode(values[0])
	}
	return a, nil
}

func referenceValid(m PayloadMode) bool {
	switch m {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return true
	}
	return referenceIsLowerHex(string(m), 64)
}

func referenceIsLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
