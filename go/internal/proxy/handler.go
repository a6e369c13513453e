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
}

// New builds a Handler.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handler{opts: opts, verifier: sigv4.NewVerifier(opts.Now), log: opts.Logger}
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
	fw, err := h.prepare(r)
	if err != nil {
		h.fail(w, r, id, err)
		return
	}
	ctx := context.WithValue(r.Context(), forwardKey{}, fw)
	ctx = context.WithValue(ctx, requestIDKey{}, id)
	h.proxy.ServeHTTP(&metadataCaseWriter{ResponseWriter: w}, r.WithContext(ctx))
}

// prepare runs every check a request must pass before anything of it
// reaches a backend, and works out where and how it goes.
func (h *Handler) prepare(r *http.Request) (*forward, error) {
	ctx := r.Context()
	tgt, err := parsePathStyle(r.URL.EscapedPath())
	if err != nil {
		return nil, err
	}
	token, payloadHash, err := h.authenticate(r)
	if err != nil {
		return nil, err
	}
	if tgt.bucket == "" {
		return nil, s3err.New("NotImplemented", "ListBuckets is not supported by this proxy yet.")
	}
	bucket, ok := h.opts.Buckets[tgt.bucket]
	if !ok {
		return nil, s3err.New("NoSuchBucket", "The specified bucket does not exist.").WithResource(tgt.bucket)
	}
	if err := h.opts.Authorizer.Authorize(ctx, token, tgt.bucket, bucket.TTL()); err != nil {
		return nil, err
	}
	backend, err := h.opts.BackendCreds.For(ctx, token, tgt.bucket, bucket)
	if err != nil {
		return nil, err
	}
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
		if err := h.checkCopySource(ctx, token, src, bucket, backend); err != nil {
			return nil, err
		}
	}
	if !backend.IsHMAC() {
		return nil, s3err.New("NotImplemented", "Backends reached with an IBM Cloud API key are not supported by this proxy yet.").WithResource(tgt.bucket)
	}
	if isStreaming(payloadHash) {
		return nil, s3err.New("NotImplemented", "aws-chunked uploads (%s) are not supported by this proxy yet.", payloadHash)
	}
	return &forward{target: tgt, bucket: bucket, creds: backend, payloadHash: payloadHash}, nil
}

// authenticate verifies the client's signature and returns its access key
// (the token the validator and creds fetcher see) and payload hash. It runs
// for every request: no header, query parameter or method skips it.
func (h *Handler) authenticate(r *http.Request) (token, payloadHash string, err error) {
	q := r.URL.Query()
	switch {
	case q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Algorithm"):
		return "", "", s3err.New("NotImplemented", "Presigned URLs are not supported by this proxy yet.")
	case q.Has("Signature") && q.Has("AWSAccessKeyId"):
		return "", "", s3err.New("InvalidRequest", "Signature Version 2 is not supported. Please use %s.", sigv4.Algorithm)
	}
	a, err := sigv4.ParseHeaderAuth(r)
	if err != nil {
		return "", "", err
	}
	if h.opts.SkipSignatureValidation {
		return a.AccessKey, a.PayloadHash, nil
	}
	secret, err := h.opts.ClientSecrets.Secret(r.Context(), a.AccessKey)
	if err != nil {
		return "", "", err
	}
	if _, err := h.verifier.VerifyHeaderAuth(r, a, secret); err != nil {
		return "", "", err
	}
	return a.AccessKey, a.PayloadHash, nil
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

func isStreaming(payloadHash string) bool {
	switch payloadHash {
	case sigv4.StreamingPayload, sigv4.StreamingPayloadTrailer, sigv4.StreamingUnsignedTrailer:
		return true
	}
	return false
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
