package sigv4

import (
	"crypto/hmac"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// MaxPresignExpiry is the longest validity a presigned URL may claim.
const MaxPresignExpiry = 7 * 24 * time.Hour

// Query parameters of a presigned URL; PresignParams lists those the proxy
// consumes and never forwards.
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"
	querySecurityToken = "X-Amz-Security-Token"
	queryContentSHA256 = "X-Amz-Content-Sha256"
)

// PresignParams are the authentication parameters of a presigned URL.
var PresignParams = []string{queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature, querySecurityToken}

// IsPresigned reports whether a query carries SigV4 query authentication.
func IsPresigned(q url.Values) bool {
	return q.Has(querySignature) || q.Has(queryCredential) || q.Has(queryAlgorithm)
}

// IsSigV2Query reports whether a query carries SigV2 query authentication.
func IsSigV2Query(q url.Values) bool {
	return q.Has("Signature") && q.Has("AWSAccessKeyId")
}

// PresignAuth is a parsed presigned request.
type PresignAuth struct {
	Credential
	Expires     time.Duration
	PayloadHash string
}

// ParsePresigned reads the SigV4 query parameters of r.
func ParsePresigned(r *http.Request, q url.Values) (PresignAuth, error) {
	var a PresignAuth
	for _, p := range []string{queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature} {
		if len(q[p]) != 1 || q.Get(p) == "" {
			return a, queryError("%s must be given exactly once", p)
		}
	}
	if q.Get(queryAlgorithm) != Algorithm {
		return a, queryError("X-Amz-Algorithm only supports %q", Algorithm)
	}
	cred, err := parseCredential(q.Get(queryCredential))
	if err != nil {
		return a, queryError("X-Amz-Credential is malformed")
	}
	a.AccessKey, a.Scope = cred.AccessKey, cred.Scope
	a.AmzDate = q.Get(queryDate)
	if a.Time, err = time.Parse(amzDateFormat, a.AmzDate); err != nil {
		return a, queryError("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if a.Scope.Date != a.AmzDate[:8] {
		return a, queryError("the X-Amz-Credential date is not the date of X-Amz-Date")
	}
	seconds, err := strconv.ParseInt(q.Get(queryExpires), 10, 64)
	if err != nil || seconds < 1 {
		return a, queryError("X-Amz-Expires should be a number of seconds from 1 to %d", int64(MaxPresignExpiry/time.Second))
	}
	if seconds > int64(MaxPresignExpiry/time.Second) {
		return a, queryError("X-Amz-Expires must be less than a week (in seconds) that is 604800")
	}
	a.Expires = time.Duration(seconds) * time.Second
	a.SignedHeaders = strings.Split(q.Get(querySignedHeaders), ";")
	a.Signature = q.Get(querySignature)
	if !isLowerHex(a.Signature, 64) {
		// S3 (and versitygw) answer a signature of the wrong form as one
		// that does not match, not as a malformed query.
		return a, signatureMismatch()
	}
	a.PayloadHash = UnsignedPayload
	if values, ok := q[queryContentSHA256]; ok {
		if len(values) != 1 || !validPayloadHash(values[0]) {
			return a, s3err.New("InvalidArgument", "X-Amz-Content-Sha256 must be given once, as UNSIGNED-PAYLOAD or a valid sha256 value.")
		}
		a.PayloadHash = values[0]
	}
	return a, nil
}

// AdmitPresigned runs the checks of a presigned request that need no
// secret: its validity window and its signed-header list. It runs before
// the client's secret is looked up, so a request that cannot be valid
// never costs a lookup (a call into the host, for an hmac_fetcher).
func (v *Verifier) AdmitPresigned(r *http.Request, a PresignAuth) error {
	now := v.now()
	if now.Before(a.Time.Add(-MaxClockSkew)) {
		return s3err.New("AccessDenied", "Request is not valid yet.")
	}
	if now.After(a.Time.Add(a.Expires)) {
		return s3err.New("AccessDenied", "Request has expired.")
	}
	if !slices.Contains(a.SignedHeaders, "host") {
		return queryError("X-Amz-SignedHeaders must include host")
	}
	return checkSignedHeaders(r, a.SignedHeaders)
}

// VerifyPresigned checks a presigned request with the client's secret:
// AdmitPresigned's checks again, then the signature.
func (v *Verifier) VerifyPresigned(r *http.Request, a PresignAuth, secret string) error {
	if err := v.AdmitPresigned(r, a); err != nil {
		return err
	}
	canonical, err := canonicalRequest(r, a.SignedHeaders, a.PayloadHash, func(key string) bool { return key == querySignature })
	if err != nil {
		return err
	}
	want := v.keys.get(secret, a.Scope).signature(a.AmzDate, a.Scope, canonical)
	if !hmac.Equal(want[:], []byte(a.Signature)) {
		return signatureMismatch()
	}
	return nil
}

func queryError(format string, args ...any) error {
	return s3err.New("AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; "+format+".", args...)
}
