package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
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
	backendTime time.Duration // until the backend's response headers
}

type forwardKey struct{}

// droppedHeaders never reach a backend: the client's own authentication
// (the proxy signs anew), proxy and forwarding headers, and Expect (the
// proxy already answered 100-continue when it started reading the body).
// httputil.ReverseProxy drops the hop-by-hop headers itself.
var droppedHeaders = []string{
	"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Expect",
	"Forwarded", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Real-Ip",
}

// rewrite points the outgoing request at the bucket's backend.
func rewrite(pr *httputil.ProxyRequest) {
	fw := pr.In.Context().Value(forwardKey{}).(*forward)
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
	pr.Out.URL = &url.URL{
		Scheme:   b.Scheme,
		Host:     host,
		Path:     path,
		RawPath:  escapedPath,
		RawQuery: canonicalQueryOrder(pr.In.URL.RawQuery, fw.presigned),
	}
	pr.Out.Host = host
	if fw.body != nil {
		fw.body.applyTo(pr.Out)
	}
	pr.Out.Header.Set("X-Amz-Content-Sha256", fw.payloadHash)
	for _, name := range droppedHeaders {
		pr.Out.Header.Del(name)
	}
	for name := range pr.Out.Header {
		if strings.HasPrefix(name, "X-Forwarded-") {
			delete(pr.Out.Header, name)
		}
	}
	lowerMetadataNames(pr.Out.Header)
}

// lowerMetadataNames undoes Go's capitalisation of x-amz-meta-* names, in
// requests and responses alike: S3 keeps metadata names as they are sent,
// and clients read them back as the lower-case names they wrote.
func lowerMetadataNames(h http.Header) {
	for name, values := range h {
		if strings.HasPrefix(name, "X-Amz-Meta-") {
			delete(h, name)
			h[strings.ToLower(name)] = values
		}
	}
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

// signingTransport signs each outgoing request for its backend just before
// it is sent.
type signingTransport struct {
	base    http.RoundTripper
	signers *lru.Cache[creds.Backend, *v4.Signer]
	now     func() time.Time
}

// signerCacheSize bounds the signers kept: one per backend credential set.
const signerCacheSize = 4096

func newSigningTransport(base http.RoundTripper, now func() time.Time) *signingTransport {
	signers, err := lru.New[creds.Backend, *v4.Signer](signerCacheSize)
	if err != nil { // only for a size <= 0
		panic(err)
	}
	return &signingTransport{base: base, signers: signers, now: now}
}

// signerFor returns the signer of one credential set. A v4.Signer caches
// its derived key by access key id alone, not by secret, so one signer
// shared by credential sets that reuse an access key id (one token's wrong
// secret, a rotated secret) would sign with a stale key.
func (t *signingTransport) signerFor(c creds.Backend) *v4.Signer {
	if s, ok := t.signers.Get(c); ok {
		return s
	}
	// The path is already S3-encoded once; the signer must not encode it
	// again.
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	t.signers.Add(c, s)
	return s
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	fw, ok := req.Context().Value(forwardKey{}).(*forward)
	if !ok {
		return nil, errors.New("proxy: request without a forward plan")
	}
	if fw.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+fw.bearer)
	} else {
		c := aws.Credentials{AccessKeyID: fw.creds.AccessKey, SecretAccessKey: fw.creds.SecretKey}
		if err := t.signerFor(fw.creds).SignHTTP(req.Context(), c, req, fw.payloadHash, "s3", fw.bucket.Region, t.now()); err != nil {
			return nil, fmt.Errorf("sign request for bucket %s: %w", fw.target.bucket, err)
		}
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	fw.backendTime = time.Since(start)
	return resp, err
}

// backendError answers when the backend could not be reached or failed
// before sending a response.
func (h *Handler) backendError(w http.ResponseWriter, r *http.Request, err error) {
	x := r.Context().Value(exchangeKey{}).(*exchange)
	fw, _ := r.Context().Value(forwardKey{}).(*forward)
	bucket := ""
	if fw != nil {
		bucket = fw.target.bucket
	}
	if fw != nil && fw.body != nil {
		if bodyErr := fw.body.failure(); bodyErr != nil {
			err = bodyErr // the client's body failed; the backend was cut off
		}
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

// bufferPool recycles the copy buffers of streamed bodies.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
