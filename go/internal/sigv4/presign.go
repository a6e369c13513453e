package sigv4

import (
	"crypto/hmac"
	"fmt"
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
	Expires time.Duration
	Payload PayloadMode
	// admittedFor is the request whose signed headers AdmitPresigned
	// found in order, which VerifyPresigned then need not check again.
	admittedFor *http.Request
}

// ParsePresigned reads the SigV4 query parameters q of a presigned request.
func ParsePresigned(q url.Values) (PresignAuth, error) {
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
	cred, problem := parseCredential(q.Get(queryCredential))
	if problem != "" {
		return a, queryError("Error parsing the X-Amz-Credential parameter; " + problem)
	}
	a.AccessKey, a.Scope = cred.AccessKey, cred.Scope
	a.AmzDate = q.Get(queryDate)
	var ok bool
	if a.Time, ok = parseAmzDate(a.AmzDate); !ok {
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
	if !isLowerHex(a.Signature, 64) {
		// S3 (and versitygw) answer a signature of the wrong form as one
		// that does not match, not as a malformed query.
		return a, signatureMismatch()
	}
	a.Payload = UnsignedPayload
	if values, ok := q[queryContentSHA256]; ok {
		if len(values) != 1 || !PayloadMode(values[0]).Valid() {
			return a, s3err.Newf(s3err.ErrInvalidArgument, "X-Amz-Content-Sha256 must be given once, as UNSIGNED-PAYLOAD or a valid sha256 value.")
		}
		a.Payload = PayloadMode(values[0])
	}
	return a, nil
}

// AdmitPresigned runs the checks of a presigned request that need no
// secret: its validity window and its signed-header list. It runs before
// the client's secret is looked up, so a request that cannot be valid
// never costs a lookup (a call into the host, for an hmac_fetcher). It
// marks a as admitted for r, so that VerifyPresigned does not walk r's
// headers again: they must not change in between (the proxy never changes
// a client's request).
func (v *Verifier) AdmitPresigned(r *http.Request, a *PresignAuth) error {
	if err := v.checkWindow(a); err != nil {
		return err
	}
	if err := checkPresignedHeaders(r, a); err != nil {
		return err
	}
	a.admittedFor = r
	return nil
}

// checkWindow rejects a presigned request used before or after its
// validity window.
func (v *Verifier) checkWindow(a *PresignAuth) error {
	now := v.now()
	if now.Before(a.Time.Add(-MaxClockSkew)) {
		return s3err.Newf(s3err.ErrAccessDenied, "Request is not valid yet.")
	}
	if expires := a.Time.Add(a.Expires); now.After(expires) {
		// S3 says when it expired and what time it is (the client's
		// clock may be the problem).
		return s3err.Newf(s3err.ErrAccessDenied, "Request has expired.").
			With("X-Amz-Expires", strconv.FormatInt(int64(a.Expires/time.Second), 10)).
			With("Expires", expires.UTC().Format(time.RFC3339)).
			With("ServerTime", now.UTC().Format(time.RFC3339))
	}
	return nil
}

func checkPresignedHeaders(r *http.Request, a *PresignAuth) error {
	if !slices.Contains(a.SignedHeaders, "host") {
		return queryError("X-Amz-SignedHeaders must include host.")
	}
	return checkSignedHeaders(r, a.SignedHeaders)
}

// VerifyPresigned checks a presigned request, whose query is q, with the
// client's secret: AdmitPresigned's checks again (the validity window
// only, if a was admitted for r: the secret's lookup took time), then the
// signature.
func (v *Verifier) VerifyPresigned(r *http.Request, q Query, a PresignAuth, secret string) error {
	if err := v.checkWindow(&a); err != nil {
		return err
	}
	if a.admittedFor != r {
		if err := checkPresignedHeaders(r, &a); err != nil {
			return err
		}
	}
	want, err := v.keys.get(secret, a.Scope).signature(r, q, &a.Credential, a.Payload, func(key string) bool { return key == querySignature })
	if err != nil {
		return err
	}
	if !hmac.Equal(want[:], []byte(a.Signature)) {
		return signatureMismatch()
	}
	return nil
}

// queryError is S3's refusal of a presigned URL's parameters, in S3's words.
func queryError(text string) error {
	return s3err.Newf(s3err.ErrAuthorizationQueryParametersError, "%s", text)
}
