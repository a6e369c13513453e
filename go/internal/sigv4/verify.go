package sigv4

import (
	"crypto/hmac"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// MaxClockSkew is how far a request's date may be from the proxy's clock.
const MaxClockSkew = 15 * time.Minute

// Verifier checks SigV4 signatures. It is safe for concurrent use.
type Verifier struct {
	keys *signingKeys
	now  func() time.Time
}

// NewVerifier returns a Verifier reading time from now (time.Now if nil).
func NewVerifier(now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: newSigningKeys(4096), now: now}
}

// HeaderAuth is a parsed header-authenticated request.
type HeaderAuth struct {
	Credential
	Payload PayloadMode // x-amz-content-sha256 as sent
	// admittedFor is the request whose signed headers AdmitHeaderAuth
	// found in order, which VerifyHeaderAuth then need not check again.
	admittedFor *http.Request
}

// ParseHeaderAuth reads the Authorization, x-amz-date and
// x-amz-content-sha256 headers of r, checking their form but not the
// signature.
func ParseHeaderAuth(r *http.Request) (HeaderAuth, error) {
	var a HeaderAuth
	// Read from the map once, by their canonical names (as Header.Get
	// would find them). S3 joins repeated headers with ','; none of these
	// may be repeated, and taking one copy while signing over both reads
	// the request two ways.
	authorization, date, payload := r.Header["Authorization"], r.Header["X-Amz-Date"], r.Header["X-Amz-Content-Sha256"]
	switch {
	case len(authorization) > 1:
		return a, malformed("the Authorization header appears more than once")
	case len(date) > 1:
		return a, s3err.Newf(s3err.ErrInvalidArgument, "The x-amz-date header appears more than once.")
	case len(payload) > 1:
		return a, s3err.Newf(s3err.ErrInvalidArgument, "The x-amz-content-sha256 header appears more than once.")
	}
	header := firstValue(authorization)
	if header == "" {
		return a, s3err.Newf(s3err.ErrAccessDenied, "Anonymous access is forbidden; sign requests with %s.", Algorithm)
	}
	cred, err := ParseAuthorization(header)
	if err != nil {
		return a, err
	}
	a.Credential = cred
	a.AmzDate = firstValue(date)
	var ok bool
	if a.Time, ok = parseAmzDate(a.AmzDate); !ok {
		return a, s3err.Newf(s3err.ErrAccessDenied, "AWS authentication requires a valid Date or x-amz-date header.")
	}
	if a.Scope.Date != a.AmzDate[:8] {
		return a, malformed("the Credential date %s is not the date of x-amz-date %s", a.Scope.Date, a.AmzDate)
	}
	a.Payload = PayloadMode(firstValue(payload))
	if a.Payload == "" {
		return a, s3err.Newf(s3err.ErrInvalidRequest, "Missing required header for this request: x-amz-content-sha256.")
	}
	if !a.Payload.Valid() {
		return a, s3err.Newf(s3err.ErrInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.").
			With("ArgumentName", "x-amz-content-sha256").With("ArgumentValue", truncate(string(a.Payload)))
	}
	return a, nil
}

// firstValue is the first of a header's values, "" for none: what
// Header.Get returns.
func firstValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// CheckTime rejects a request signed too far from now.
func (v *Verifier) CheckTime(t time.Time) error {
	skew := v.now().Sub(t)
	if skew > MaxClockSkew || skew < -MaxClockSkew {
		return s3err.New(s3err.ErrRequestTimeTooSkewed)
	}
	return nil
}

// AdmitHeaderAuth runs the checks of a header-authenticated request that
// need no secret: the clock and the signed-header list (ParseHeaderAuth
// checked the form). It runs before the client's secret is looked up, so a
// request that cannot be valid never costs a lookup (a call into the host,
// for an hmac_fetcher). It marks a as admitted for r, so that
// VerifyHeaderAuth does not walk r's headers again: they must not change
// in between (the proxy never changes a client's request).
func (v *Verifier) AdmitHeaderAuth(r *http.Request, a *HeaderAuth) error {
	if err := v.CheckTime(a.Time); err != nil {
		return err
	}
	if err := checkSignedHeaders(r, a.SignedHeaders); err != nil {
		return err
	}
	a.admittedFor = r
	return nil
}

// VerifyHeaderAuth checks a header-authenticated request, whose query is
// q, with the client's secret: AdmitHeaderAuth's checks again (the clock
// only, if a was admitted for r: the secret's lookup took time), then the
// signature. It returns the signature, which seeds the chunk signature
// chain of streaming uploads.
func (v *Verifier) VerifyHeaderAuth(r *http.Request, q Query, a HeaderAuth, secret string) (string, error) {
	if err := v.CheckTime(a.Time); err != nil {
		return "", err
	}
	if a.admittedFor != r {
		if err := checkSignedHeaders(r, a.SignedHeaders); err != nil {
			return "", err
		}
	}
	want, err := v.keys.get(secret, a.Scope).signature(r, q, &a.Credential, a.Payload, nil)
	if err != nil {
		return "", err
	}
	if !hmac.Equal(want[:], []byte(a.Signature)) {
		return "", signatureMismatch()
	}
	return a.Signature, nil // equal to want
}

func signatureMismatch() error {
	return s3err.New(s3err.ErrSignatureDoesNotMatch)
}

// checkSignedHeaders insists that host and every x-amz-* header the request
// carries are signed, as S3 does: an unsigned x-amz-* header would be
// re-signed by the proxy, letting anyone on the path alter the request.
func checkSignedHeaders(r *http.Request, signed []string) error {
	if !slices.Contains(signed, "host") {
		return malformed("SignedHeaders must include host")
	}
	if !distinctLowerNames(signed) {
		return malformed("SignedHeaders must list distinct lower-case header names")
	}
	var unsigned []string
	for name := range r.Header {
		if len(name) < len("x-amz-") || !strings.EqualFold(name[:len("x-amz-")], "x-amz-") {
			continue
		}
		// A signed-header list is short: a linear search beats a map.
		if !containsLowerOf(signed, name) {
			unsigned = append(unsigned, strings.ToLower(name))
		}
	}
	if len(unsigned) > 0 {
		return HeadersNotSigned(unsigned)
	}
	return nil
}

// containsLowerOf reports whether list holds strings.ToLower(name),
// without lower-casing name into a new string when name is ASCII (as
// every header name Go's servers accept is).
func containsLowerOf(list []string, name string) bool {
	if !isASCII(name) {
		return slices.Contains(list, strings.ToLower(name))
	}
	for _, s := range list {
		if len(s) == len(name) && isLowerOfASCII(s, name) {
			return true
		}
	}
	return false
}

// isLowerOfASCII reports whether lower is name, an ASCII string of the
// same length, in lower case.
func isLowerOfASCII(lower, name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendCanonicalRequest appends to b the canonical request the client
// signed:
//
//	method, canonical URI, canonical query, one "name:value" line per
//	signed header then an empty line, the signed names joined with ';',
//	and the payload hash, each on its own line.
//
// Built in the signing key's pooled buffer (signature), it costs no
// allocation however many headers.
func appendCanonicalRequest(b []byte, r *http.Request, q Query, signedHeaders []string, payload PayloadMode, skipQuery func(string) bool) ([]byte, error) {
	uri, err := EncodePath(r.URL.EscapedPath())
	if err != nil {
		return b, s3err.New(s3err.ErrInvalidURI)
	}
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = append(b, uri...)
	b = append(b, '\n')
	b = appendCanonicalQuery(b, q.Params, skipQuery)
	b = append(b, '\n')
	for _, name := range signedHeaders {
		value, ok := HeaderValue(r, name)
		if !ok {
			return b, malformed("the signed header %q is not in the request", truncate(name))
		}
		b = append(b, name...)
		b = append(b, ':')
		b = append(b, value...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, name := range signedHeaders {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, name...)
	}
	b = append(b, '\n')
	return append(b, payload...), nil
}

// distinctLowerNames reports whether names are non-empty, lower case and
// each given once, as SigV4 writes them: the proxy's forwarding rule
// compares request headers with this list.
func distinctLowerNames(names []string) bool {
	var seen map[string]bool
	if len(names) > 16 { // a long list: no quadratic search
		seen = make(map[string]bool, len(names))
	}
	for i, name := range names {
		if name == "" || name != strings.ToLower(name) {
			return false
		}
		switch {
		case seen == nil && slices.Contains(names[:i], name), seen != nil && seen[name]:
			return false
		case seen != nil:
			seen[name] = true
		}
	}
	return true
}

// HeadersNotSigned is S3's refusal of x-amz-* headers the client did not
// sign: the names (lower case) in the HeadersNotSigned element.
func HeadersNotSigned(names []string) *s3err.Error {
	slices.Sort(names)
	return s3err.Newf(s3err.ErrAccessDenied, "There were headers present in the request which were not signed").
		With("HeadersNotSigned", strings.Join(names, ", "))
}
