// Package proxy is the S3 request path: authenticate the client, authorize
// it for the bucket, find the bucket's backend and credentials, rewrite the
// request for the backend, re-sign it and stream it through.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/object-storage-proxy/osp/internal/authz"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// Options are the collaborators of a Handler.
type Options struct {
	Buckets                 map[string]*config.Bucket
	ClientSecrets           *creds.ClientSecrets
	BackendCreds            *creds.BackendCreds
	Authorizer              *authz.Authorizer
	SkipSignatureValidation bool
	// Transport carries requests to backends; it must not follow
	// redirects or decompress bodies.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// VirtualHostDomains are the proxy's own domains: a request to
	// bucket.<domain> addresses that bucket (virtual-hosted style).
	VirtualHostDomains []string
	// OnRequest, if set, is called once per client request.
	OnRequest func()
	// Now is the clock for signature dates (time.Now if nil).
	Now func() time.Time
}

// Handler is the proxy's http.Handler.
type Handler struct {
	opts     Options
	verifier *sigv4.Verifier
	proxy    *httputil.ReverseProxy
	log      *slog.Logger
	started  time.Time // reported as the creation date of every bucket
}

// New builds a Handler.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handler{opts: opts, verifier: sigv4.NewVerifier(opts.Now), log: opts.Logger, started: opts.Now()}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:       rewrite,
		Transport:     newSigningTransport(opts.Transport, opts.Now),
		FlushInterval: 200 * time.Millisecond, // keep long S3 responses (whitespace keep-alives) moving
		BufferPool:    bufferPool{},
		ErrorHandler:  h.backendError,
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return h
}

type requestIDKey struct{}

// ServeHTTP handles one client request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := newRequestID()
	if h.opts.OnRequest != nil {
		h.opts.OnRequest()
	}
	fw, err := h.prepare(w, r, id)
	if err != nil {
		h.fail(w, r, id, err)
		return
	}
	if fw == nil { // answered by the proxy itself
		return
	}
	ctx := context.WithValue(r.Context(), forwardKey{}, fw)
	ctx = context.WithValue(ctx, requestIDKey{}, id)
	h.proxy.ServeHTTP(&metadataCaseWriter{ResponseWriter: w}, r.WithContext(ctx))
}

// authenticated is what authentication established about a request.
type authenticated struct {
	token       string // the client's access key id
	payloadHash string // as the client declared it
	presigned   bool
	// chunks verifies aws-chunked signatures; nil when the body has none
	// or signatures are not checked.
	chunks *sigv4.ChunkChain
}

// prepare runs every check a request must pass before anything of it
// reaches a backend, and works out where and how it goes. A nil forward
// with a nil error means the proxy answered the request itself.
func (h *Handler) prepare(w http.ResponseWriter, r *http.Request, id string) (*forward, error) {
	ctx := r.Context()
	tgt, err := route(r, h.opts.VirtualHostDomains)
	if err != nil {
		return nil, err
	}
	auth, err := h.authenticate(r)
	if err != nil {
		return nil, err
	}
	if tgt.bucket == "" {
		if r.Method != http.MethodGet {
			return nil, s3err.New("MethodNotAllowed", "The specified method is not allowed against this resource.")
		}
		return nil, h.listBuckets(ctx, w, r, auth.token, id)
	}
	bucket, ok := h.opts.Buckets[tgt.bucket]
	if !ok {
		return nil, s3err.New("NoSuchBucket", "The specified bucket does not exist.").WithResource(tgt.bucket)
	}
	if err := h.opts.Authorizer.Authorize(ctx, auth.token, tgt.bucket, bucket.TTL()); err != nil {
		return nil, err
	}
	backend, err := h.opts.BackendCreds.For(ctx, auth.token, tgt.bucket, bucket)
	if err != nil {
		return nil, err
	}
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
		if err := h.checkCopySource(ctx, auth.token, src, bucket, backend); err != nil {
			return nil, err
		}
	}
	if !backend.IsHMAC() {
		return nil, s3err.New("NotImplemented", "Backends reached with an IBM Cloud API key are not supported by this proxy yet.").WithResource(tgt.bucket)
	}
	fw := &forward{target: tgt, bucket: bucket, creds: backend, payloadHash: auth.payloadHash, presigned: auth.presigned}
	if isStreaming(auth.payloadHash) {
		if fw.body, err = planStreamingBody(r, auth.payloadHash, auth.chunks); err != nil {
			return nil, err
		}
		fw.payloadHash = fw.body.payloadHash
	}
	return fw, nil
}

// authenticate verifies the client's signature, by header or presigned
// query. It runs for every request: no header, query parameter or method
// skips it.
func (h *Handler) authenticate(r *http.Request) (authenticated, error) {
	q := r.URL.Query()
	if sigv4.IsSigV2Query(q) || sigv4.IsSigV2Header(r.Header.Get("Authorization")) {
		return authenticated{}, s3err.New("InvalidRequest", "Signature Version 2 is not supported. Please use %s.", sigv4.Algorithm)
	}
	if sigv4.IsPresigned(q) {
		if r.Header.Get("Authorization") != "" {
			return authenticated{}, s3err.New("InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
		}
		a, err := sigv4.ParsePresigned(r, q)
		if err != nil {
			return authenticated{}, err
		}
		if isStreaming(a.PayloadHash) {
			return authenticated{}, s3err.New("InvalidRequest", "Presigned requests cannot use aws-chunked payloads.")
		}
		if !h.opts.SkipSignatureValidation {
			secret, err := h.opts.ClientSecrets.Secret(r.Context(), a.AccessKey)
			if err != nil {
				return authenticated{}, err
			}
			if err := h.verifier.VerifyPresigned(r, a, secret); err != nil {
				return authenticated{}, err
			}
		}
		return authenticated{token: a.AccessKey, payloadHash: a.PayloadHash, presigned: true}, nil
	}
	a, err := sigv4.ParseHeaderAuth(r)
	if err != nil {
		return authenticated{}, err
	}
	if h.opts.SkipSignatureValidation {
		return authenticated{token: a.AccessKey, payloadHash: a.PayloadHash}, nil
	}
	secret, err := h.opts.ClientSecrets.Secret(r.Context(), a.AccessKey)
	if err != nil {
		return authenticated{}, err
	}
	seed, err := h.verifier.VerifyHeaderAuth(r, a, secret)
	if err != nil {
		return authenticated{}, err
	}
	auth := authenticated{token: a.AccessKey, payloadHash: a.PayloadHash}
	if a.PayloadHash == sigv4.StreamingPayload || a.PayloadHash == sigv4.StreamingPayloadTrailer {
		auth.chunks = h.verifier.NewChunkChain(secret, a.Credential, seed)
	}
	return auth, nil
}

// checkCopySource authorizes the source bucket of a copy and makes sure the
// copy can be done by the destination's backend in one request: same store,
// same credentials. Anything else would fail half-way at the backend.
func (h *Handler) checkCopySource(ctx context.Context, token, header string, dst *config.Bucket, dstCreds creds.Backend) error {
	srcName, err := copySourceBucket(header)
	if err != nil {
		return err
	}
	src, ok := h.opts.Buckets[srcName]
	if !ok {
		return s3err.New("NoSuchBucket", "The specified copy source bucket does not exist.").WithResource(srcName)
	}
	if err := h.opts.Authorizer.Authorize(ctx, token, srcName, src.TTL()); err != nil {
		return err
	}
	srcCreds, err := h.opts.BackendCreds.For(ctx, token, srcName, src)
	if err != nil {
		return err
	}
	if src.Scheme != dst.Scheme || src.Endpoint() != dst.Endpoint() || srcCreds != dstCreds {
		return s3err.New("InvalidRequest", "Copying between buckets on different backends or credentials is not supported; source bucket %s.", srcName).WithResource(srcName)
	}
	return nil
}

// fail answers with an S3 error and logs why; causes stay in the log.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, id string, err error) {
	e := s3err.As(err)
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "request rejected", "request_id", id, "method", r.Method,
		"code", e.Code, "status", e.Status, "error", errText(err))
	s3err.Write(w, r, e, id)
}

func errText(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) && e.Unwrap() != nil {
		return e.Unwrap().Error()
	}
	return err.Error()
}
