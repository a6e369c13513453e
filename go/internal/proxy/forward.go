package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// forward is everything the rewrite and the signer need about one request,
// decided before the request leaves the proxy.
type forward struct {
	target      target
	bucket      *config.Bucket
	creds       creds.Backend
	payloadHash string        // what the backend is told, and signed
	presigned   bool          // the client's auth parameters are in the query
	body        *upstreamBody // a decoded aws-chunked body, or nil to pass through
	bearer      string        // an IAM token for an API-key backend; "" to sign with HMAC
	denial      *deleteDenial // keys of a DeleteObjects the validator refused, added to the backend's result
	backendTime time.Duration // until the backend's response headers
}

// droppedHeaders never reach a backend: the client's own authentication
// (the proxy signs anew), proxy and forwarding headers, and Expect (the
// proxy already answered 100-continue when it started reading the body).
// Hop-by-hop headers are dropped too (see hopHeaders).
var droppedHeaders = map[string]bool{
	"Authorization": true, "X-Amz-Date": true, "X-Amz-Security-Token": true, "Expect": true,
	"Forwarded": true, "Via": true, "X-Real-Ip": true,
}

// hopHeaders belong to one connection, not to the request or response
// (RFC 9110, section 7.6.1), and are never passed on. Content-Length is
// set by the transport from the body actually sent.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// backendURL is where a request for fw's bucket and key goes, and the Host
// it names.
func backendURL(fw *forward, rawQuery string) (*url.URL, string) {
	b := fw.bucket
	host := b.Endpoint()
	var escapedPath string
	if b.AddressingStyle == config.VirtualStyle {
		host = fw.target.bucket + "." + host
		escapedPath = "/" + fw.target.escapedKey
	} else {
		escapedPath = "/" + sigv4.Encode(fw.target.bucket)
		if fw.target.escapedKey != "" {
			escapedPath += "/" + fw.target.escapedKey
		}
	}
	// escapedPath is canonical SigV4 encoding, so it always unescapes.
	path, _ := url.PathUnescape(escapedPath)
	return &url.URL{
		Scheme:   b.Scheme,
		Host:     host,
		Path:     path,
		RawPath:  escapedPath,
		RawQuery: canonicalQueryOrder(rawQuery, fw.presigned),
	}, host
}

// forwardedHeader copies the client's headers that the backend gets, in one
// pass: not the client's authentication, not proxy or hop-by-hop headers
// (nor those its Connection header names), and x-amz-meta-* names back in
// lower case.
func forwardedHeader(in http.Header) http.Header {
	out := make(http.Header, len(in)+2)
	connection := in["Connection"]
	for name, values := range in {
		switch {
		case droppedHeaders[name], hopHeaders[name], strings.HasPrefix(name, "X-Forwarded-"),
			len(connection) > 0 && listsToken(connection, name):
			continue
		case strings.HasPrefix(name, "X-Amz-Meta-"):
			name = strings.ToLower(name)
		}
		out[name] = values
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = []string{""} // not Go's own: the transport then sends none
	}
	return out
}

// listsToken reports whether comma-separated header values name token,
// as a Connection header names the headers it makes hop-by-hop.
func listsToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// canonicalQueryOrder re-encodes each query parameter with the SigV4 rules,
// keeping the client's order, so that the backend and the signer cannot
// read the parameters differently (a raw '+', say). The client's presigned
// authentication parameters are left out: the proxy signs anew.
func canonicalQueryOrder(raw string, dropPresign bool) string {
	if raw == "" {
		return ""
	}
	params, err := sigv4.ParseQuery(raw)
	if err != nil { // verified requests always parse; keep the raw text
		return raw
	}
	var b strings.Builder
	for _, p := range params {
		if dropPresign && slices.Contains(sigv4.PresignParams, p.Key) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(sigv4.Encode(p.Key))
		b.WriteByte('=')
		b.WriteString(sigv4.Encode(p.Value))
	}
	return b.String()
}

// signers keeps one SDK signer per backend credential set.
type signers struct {
	cache *lru.Cache[creds.Backend, *v4.Signer]
}

// signerCacheSize bounds the signers kept: one per backend credential set.
const signerCacheSize = 4096

func newSigners() signers {
	cache, err := lru.New[creds.Backend, *v4.Signer](signerCacheSize)
	if err != nil { // only for a size <= 0
		panic(err)
	}
	return signers{cache: cache}
}

// signerFor returns the signer of one credential set. A v4.Signer caches
// its derived key by access key id alone, not by secret, so one signer
// shared by credential sets that reuse an access key id (one token's wrong
// secret, a rotated secret) would sign with a stale key.
func (s signers) signerFor(c creds.Backend) *v4.Signer {
	if signer, ok := s.cache.Get(c); ok {
		return signer
	}
	// The path is already S3-encoded once; the signer must not encode it
	// again.
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	s.cache.Add(c, signer)
	return signer
}

// authorize adds the backend's authentication to an outgoing request: a
// bearer token, or a SigV4 signature with the bucket's HMAC keys.
func (s signers) authorize(req *http.Request, fw *forward, now time.Time) error {
	if fw.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+fw.bearer)
		return nil
	}
	c := aws.Credentials{AccessKeyID: fw.creds.AccessKey, SecretAccessKey: fw.creds.SecretKey}
	if err := s.signerFor(fw.creds).SignHTTP(req.Context(), c, req, fw.payloadHash, "s3", fw.bucket.Region, now); err != nil {
		return fmt.Errorf("sign request for bucket %s: %w", fw.target.bucket, err)
	}
	return nil
}

// backendError answers when the backend could not be reached or failed
// before sending a response.
func (h *Handler) backendError(w http.ResponseWriter, r *http.Request, x *exchange, fw *forward, err error) {
	bucket := fw.target.bucket
	// The client's body failed and the backend was cut off: the decoder's
	// verdict first (a bad chunk signature), then the read itself.
	if fw.body != nil && fw.body.failure() != nil {
		err = fw.body.failure()
	} else if bodyErr := x.body.failure(); bodyErr != nil {
		err = bodyErr
	}
	// Always answer, even a client that seems gone: one that only
	// half-closed its side still reads, and an unanswered handler would
	// make Go send it an empty 200.
	var e *s3err.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		e = s3err.Wrap(err, "IncompleteBody", "The request was cut off by the client before it completed.")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		e = s3err.Wrap(err, "ServiceUnavailable", "The backend of bucket %s is unreachable.", bucket)
	case isTimeout(err):
		e = s3err.Wrap(err, "GatewayTimeout", "The backend of bucket %s did not answer in time.", bucket)
	default:
		e = s3err.Wrap(err, "BadGateway", "The backend of bucket %s failed to answer.", bucket)
	}
	h.fail(w, r, x, e.WithResource(bucket))
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
