// Package proxy is the S3 request path: authenticate the client, authorize
// it for the bucket, find the bucket's backend and credentials, rewrite the
// request for the backend, re-sign it and stream it through.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/object-storage-proxy/osp/internal/accesslog"
	"github.com/object-storage-proxy/osp/internal/authz"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/iam"
	"github.com/object-storage-proxy/osp/internal/metrics"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// Options are the collaborators of a Handler.
type Options struct {
	// Buckets is cos_map: bucket names and patterns ("team-a-*", "*").
	Buckets                 map[string]*config.Bucket
	ClientSecrets           *creds.ClientSecrets
	BackendCreds            *creds.BackendCreds
	Authorizer              *authz.Authorizer
	SkipSignatureValidation bool
	// Transport carries requests to backends; it must not follow
	// redirects or decompress bodies.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// AccessLog writes each request's access line, if Logger lets info
	// lines through: an answered request's to a writer that may batch
	// them, a refusal's at once. When nil, the lines go through Logger.
	AccessLog *accesslog.Logger
	// VirtualHostDomains are the proxy's own domains: a request to
	// bucket.<domain> addresses that bucket (virtual-hosted style).
	VirtualHostDomains []string
	// Tokens turns IBM Cloud API keys into IAM bearer tokens.
	Tokens *iam.Tokens
	// Metrics, if set, records every request.
	Metrics *metrics.Metrics
	// TrustForwardedHost takes X-Forwarded-Host as the Host the client
	// signed: for proxies behind a load balancer that rewrites Host.
	TrustForwardedHost bool
	// ClientBodyTimeout cuts off a client that sends nothing of its body
	// for this long (0: no limit).
	ClientBodyTimeout time.Duration
	// OnRequest, if set, is called once per client request.
	OnRequest func()
	// Now is the clock for signature dates (time.Now if nil).
	Now func() time.Time
	// Limits, if set, are the presigned-URL and per-key limits (limits.go).
	Limits *Limits
}

// Handler is the proxy's http.Handler.
type Handler struct {
	opts     Options
	buckets  *config.Resolver // opts.Buckets, indexed once
	verifier *sigv4.Verifier
	signers  signers
	log      *slog.Logger
	access   *accesslog.Logger // opts.AccessLog; nil: lines through log
	started  time.Time         // reported as the creation date of every bucket
	// backendHosts are where each cos_map entry's requests go, joined
	// once rather than per request.
	backendHosts map[*config.Bucket]backendHost
}

// New builds a Handler.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	hosts := make(map[*config.Bucket]backendHost, len(opts.Buckets))
	for key, b := range opts.Buckets {
		if b == nil {
			continue
		}
		if _, shared := hosts[b]; shared {
			key = "" // an entry under two keys: its virtual hosts are joined per request
		}
		hosts[b] = hostOf(key, b)
	}
	return &Handler{opts: opts, buckets: config.NewResolver(opts.Buckets), verifier: sigv4.NewVerifier(opts.Now), signers: newSigners(), log: opts.Logger, access: opts.AccessLog, started: opts.Now(),
		backendHosts: hosts}
}

// backendHost is where b's requests go, as joined when the Handler was
// built.
func (h *Handler) backendHost(b *config.Bucket) backendHost {
	if e, ok := h.backendHosts[b]; ok {
		return e
	}
	return hostOf("", b)
}

// ServeHTTP handles one client request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{start: time.Now(), operation: "Unknown"}
	x.idDigits.fill() // the one write: x.id views these digits
	if h.opts.OnRequest != nil {
		h.opts.OnRequest()
	}
	hasBody := r.Body != nil && r.Body != http.NoBody
	var fwdHost string
	if h.opts.TrustForwardedHost {
		fwdHost = r.Header.Get("X-Forwarded-Host")
	}
	if hasBody || fwdHost != "" {
		// On a copy of the request, as its Body and Host change: the
		// server inspects its own Request's Body to know whether a
		// 100-continue body was left unread.
		r = r.WithContext(r.Context())
	}
	if fwdHost != "" {
		// The load balancer says which Host the client signed.
		r.Host = strings.TrimSpace(firstListItem(fwdHost))
	}
	var body *clientBody
	if hasBody {
		body = &x.bodyRoom
		*body = clientBody{ReadCloser: r.Body, timeout: h.opts.ClientBodyTimeout, w: w}
		r.Body = body
	}
	x.scheme = h.clientScheme(r)
	x.writer = responseWriter{ResponseWriter: w, requestID: [1]string{x.id()}}
	rw := &x.writer
	defer h.record(r, x, rw, body)
	q, err := screen(rw, r)
	if err != nil {
		h.fail(rw, r, x, err)
		return
	}
	fw, err := h.prepare(rw, r, q, x)
	if err != nil {
		h.fail(rw, r, x, err)
		return
	}
	if fw == nil { // answered by the proxy itself
		return
	}
	x.forward = fw
	h.relay(rw, r, x, fw)
}

// clientScheme is the scheme the client used: its connection's, or,
// behind a trusted balancer that ends TLS and talks plain HTTP to the
// proxy, the one X-Forwarded-Proto names.
func (h *Handler) clientScheme(r *http.Request) string {
	if h.opts.TrustForwardedHost {
		switch proto := strings.ToLower(strings.TrimSpace(firstListItem(r.Header.Get("X-Forwarded-Proto")))); proto {
		case "http", "https":
			return proto
		}
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// firstListItem is the first item of a comma-separated header value.
func firstListItem(value string) string {
	first, _, _ := strings.Cut(value, ",")
	return first
}

// authenticated is what authentication established about a request.
type authenticated struct {
	token     string            // the client's access key id
	payload   sigv4.PayloadMode // as the client declared it
	presigned bool
	// signedHeaders are the lower-case names the client signed (for a
	// presigned request, X-Amz-SignedHeaders): the forwarding rule passes
	// on these and few others. Parsed even when signatures are not checked.
	signedHeaders []string
	// dropped names the headers the forwarding rule keeps from the backend.
	dropped []string
	// chunks verifies aws-chunked signatures; nil when the body has none
	// or signatures are not checked.
	chunks *sigv4.ChunkChain
	// A presigned URL's signature and validity, for its limits.
	signature string
	expiresIn time.Duration
	expiresAt time.Time
}

// prepare runs every check a request must pass before anything of it
// reaches a backend, and works out where and how it goes. A nil forward
// with a nil error means the proxy answered the request itself.
func (h *Handler) prepare(w http.ResponseWriter, r *http.Request, q sigv4.Query, x *exchange) (*forward, error) {
	ctx := r.Context()
	tgt, err := route(r, h.opts.VirtualHostDomains)
	if err != nil {
		return nil, err
	}
	access, err := accessOf(r, q.Values, tgt)
	// The one resolution of this request's bucket: its entry serves it,
	// labels its metrics and decides its TTL.
	entry, served := h.buckets.Lookup(tgt.bucket)
	x.bucket, x.operation = bucketLabel(tgt.bucket, entry, served), access.Operation
	if err != nil {
		return nil, err
	}
	auth, err := h.authenticate(r, q)
	x.accessKey = auth.token // the claimed key, for the log, even when refused
	if err != nil {
		return nil, err
	}
	access.Token = auth.token
	h.logDropped(ctx, x, auth.dropped)
	var servedBucket *config.Bucket
	if served {
		servedBucket = entry.Bucket
	}
	var rate keyRate
	if err := h.limitRequests(ctx, w, auth, servedBucket, &rate); err != nil {
		return nil, err
	}
	defer h.settleRate(ctx, auth.token, &rate)
	if tgt.bucket == "" {
		if r.Method != http.MethodGet {
			return nil, s3err.New(s3err.ErrMethodNotAllowed)
		}
		return nil, h.listBuckets(ctx, w, q.Values, auth.token, x.id())
	}
	if !served {
		return nil, s3err.New(s3err.ErrNoSuchBucket).WithResource(tgt.bucket)
	}
	bucket := entry.Bucket
	if err := h.checkPresignExpiry(auth, bucket); err != nil {
		return nil, err
	}
	if err := h.opts.Authorizer.Authorize(ctx, access, bucket.TTL()); err != nil {
		return nil, err
	}
	backend, err := h.opts.BackendCreds.For(ctx, access, bucket)
	if err != nil {
		return nil, err
	}
	fw := &x.forwardRoom
	*fw = forward{target: tgt, clientPath: writtenPath(r.URL), bucket: bucket, creds: backend, query: q, payload: auth.payload, presigned: auth.presigned, signed: auth.signedHeaders,
		accessKey: auth.token, rate: rate.limit}
	// screen let through one non-empty copy source at most, and
	// checkForwarding one that is signed.
	if values := r.Header["X-Amz-Copy-Source"]; len(values) == 1 {
		src, err := copySource(values[0])
		if err != nil {
			return nil, err
		}
		if err := h.checkCopySource(ctx, auth.token, src, bucket, backend); err != nil {
			return nil, err
		}
		// The backend reads the source the proxy authorized, encoded so
		// that it cannot read it otherwise.
		fw.copySource = src.canonical()
	}
	if !backend.IsHMAC() {
		if fw.bearer, err = h.bearerToken(ctx, backend.APIKey, tgt.bucket); err != nil {
			return nil, err
		}
	}
	if access.Operation == "DeleteObjects" && h.opts.Authorizer.KeyAware() {
		if err := h.spendPresignedUse(ctx, w, auth, bucket, &rate); err != nil {
			return nil, err
		}
		return h.deleteObjects(ctx, w, r, auth, access, fw)
	}
	if err := checkSize(r, access.Operation, auth.payload); err != nil {
		return nil, err
	}
	h.throttleUpload(r, auth.token, rate.limit)
	check := hashAndFraming
	switch {
	case fw.bearer != "":
		check = nothing
	case bucket.PlainUploads():
		check = hashOnly
	}
	if fw.body, err = planBody(r, auth, check); err != nil {
		return nil, err
	}
	if fw.body != nil {
		fw.payload = fw.body.payload
	}
	if err := h.spendPresignedUse(ctx, w, auth, bucket, &rate); err != nil {
		return nil, err
	}
	return fw, nil
}

// writtenPath is u's path as the client wrote it when u keeps that
// (RawPath), else its decoded path, which is the same when nothing in it
// is escaped. Unlike EscapedPath, it costs no scan. It is only a
// candidate: setURL takes of it no byte other than those it would write.
func writtenPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.Path
}

// authenticate verifies the client's signature, by header or presigned
// query. It runs for every request: no header, query parameter or method
// skips it. A refused request still reports the access key it claimed
// (for the log).
func (h *Handler) authenticate(r *http.Request, q sigv4.Query) (authenticated, error) {
	c, err := h.parseAuth(r, q)
	if err != nil {
		return authenticated{}, err
	}
	claimed := authenticated{token: c.auth.token}
	auth := c.auth
	// Everything that needs no secret first, the forwarding rule's
	// refusals included: a request that cannot be valid never makes the
	// proxy look a secret up.
	if auth.dropped, err = checkForwarding(r.Header, auth.signedHeaders); err != nil {
		return claimed, err
	}
	if h.opts.SkipSignatureValidation {
		return auth, nil
	}
	if err := h.admit(r, &c); err != nil {
		return claimed, err
	}
	if err := h.checkToken(c.securityToken, auth.token); err != nil {
		return claimed, err
	}
	secret, err := h.opts.ClientSecrets.Secret(r.Context(), auth.token)
	if err != nil {
		return claimed, err
	}
	seed, err := h.verify(r, q, &c, secret)
	if err != nil {
		return claimed, err
	}
	if auth.payload.SignedChunks() {
		auth.chunks = h.verifier.NewChunkChain(secret, c.credential, seed)
	}
	return auth, nil
}

// clientAuth is a client's authentication as parsed, by header or
// presigned query: what it claims, and what proves it. (Kept as values,
// without closures, so that parsing allocates nothing on the hot path.)
type clientAuth struct {
	auth          authenticated // what the client claims, if proven
	credential    sigv4.Credential
	securityToken string // X-Amz-Security-Token, where the scheme carries it
	header        sigv4.HeaderAuth
	presign       sigv4.PresignAuth // when auth.presigned
}

// admit runs the checks of c that need no secret.
func (h *Handler) admit(r *http.Request, c *clientAuth) error {
	if c.auth.presigned {
		return h.verifier.AdmitPresigned(r, &c.presign)
	}
	return h.verifier.AdmitHeaderAuth(r, &c.header)
}

// verify checks c's signature with the client's secret and returns the
// signature (the seed of a chunk signature chain).
func (h *Handler) verify(r *http.Request, q sigv4.Query, c *clientAuth, secret string) (string, error) {
	if c.auth.presigned {
		return c.presign.Signature, h.verifier.VerifyPresigned(r, q, c.presign, secret)
	}
	return h.verifier.VerifyHeaderAuth(r, q, c.header, secret)
}

// parseAuth reads the client's authentication, refusing the schemes the
// proxy does not take (SigV2, both at once, aws-chunked presigned).
func (h *Handler) parseAuth(r *http.Request, q sigv4.Query) (clientAuth, error) {
	authorization := r.Header.Get("Authorization")
	if sigv4.IsSigV2Query(q.Values) || sigv4.IsSigV2Header(authorization) {
		return clientAuth{}, s3err.Newf(s3err.ErrInvalidRequest, "The authorization mechanism you have provided is not supported. Please use %s.", sigv4.Algorithm)
	}
	if !sigv4.IsPresigned(q.Values) {
		a, err := sigv4.ParseHeaderAuth(r)
		if err != nil {
			return clientAuth{}, err
		}
		return clientAuth{
			auth:          authenticated{token: a.AccessKey, payload: a.Payload, signedHeaders: a.SignedHeaders},
			credential:    a.Credential,
			securityToken: r.Header.Get("X-Amz-Security-Token"),
			header:        a,
		}, nil
	}
	if authorization != "" {
		return clientAuth{}, s3err.Newf(s3err.ErrInvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	}
	a, err := sigv4.ParsePresigned(q.Values)
	if err != nil {
		return clientAuth{}, err
	}
	if a.Payload.Streaming() {
		return clientAuth{}, s3err.Newf(s3err.ErrInvalidRequest, "Presigned requests cannot use aws-chunked payloads.")
	}
	return clientAuth{
		auth: authenticated{token: a.AccessKey, payload: a.Payload, presigned: true, signedHeaders: a.SignedHeaders,
			signature: a.Signature, expiresIn: a.Expires, expiresAt: a.Time.Add(a.Expires)},
		credential:    a.Credential,
		securityToken: q.Values.Get("X-Amz-Security-Token"),
		presign:       a,
	}, nil
}

// checkToken refuses a session token sent with a keystore key, as S3
// refuses one with permanent credentials (400 InvalidToken), before any
// signature is checked. The proxy checks no token itself: with a key from
// hmac_fetcher, which may be temporary, the token is only signed over.
func (h *Handler) checkToken(token, accessKey string) error {
	if token != "" && h.opts.ClientSecrets.Permanent(accessKey) {
		return s3err.New(s3err.ErrInvalidToken)
	}
	return nil
}

// logDropped names, at debug level, the client's headers the forwarding
// rule kept from the backend; never their values, which may be secret.
func (h *Handler) logDropped(ctx context.Context, x *exchange, dropped []string) {
	if len(dropped) == 0 || !h.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	h.log.Debug("request headers not forwarded: neither signed nor allowed unsigned", "request_id", x.id(), "headers", strings.Join(dropped, ","))
}

// accessOf describes a request for the authorization callables: the key is
// the object key, the prefix of a listing, or "" for any other bucket-level
// operation. A prefix means something only to a listing: shown as the key
// of ?policy or ?delete it would let a validator that allows a prefix
// approve a request on the whole bucket. A prefix given twice, or not in
// UTF-8, is refused so that the validator and the backend cannot read
// different ones.
func accessOf(r *http.Request, q url.Values, tgt target) (s3op.Access, error) {
	op := s3op.Name(s3op.Request{Method: r.Method, Bucket: tgt.bucket, Key: tgt.key, Query: q, Header: r.Header})
	access := s3op.Access{Bucket: tgt.bucket, Method: r.Method, Key: tgt.key, Operation: op}
	if why, refused := unsupportedOperations[op]; refused {
		return access, s3err.Newf(s3err.ErrNotImplemented, "%s is not supported through this proxy: %s", op, why)
	}
	prefix := q["prefix"]
	switch {
	case len(prefix) > 1:
		return access, s3err.Newf(s3err.ErrInvalidArgument, "The prefix query parameter may be given only once.")
	case len(prefix) == 1 && !utf8.ValidString(prefix[0]):
		return access, s3err.Newf(s3err.ErrInvalidArgument, "The prefix query parameter is not valid UTF-8.")
	case tgt.key == "" && len(prefix) == 1 && s3op.IsListing(op):
		access.Key = prefix[0]
	}
	return access, nil
}

// unsupportedOperations are refused whatever a validator would say: what
// they do reaches past what the validator is shown.
var unsupportedOperations = map[string]string{
	"RenameObject":  "it moves a second key (x-amz-rename-source) that authorization does not see.",
	"CreateSession": "it would hand the client session credentials of the backend's own account.",
}

// maxObjectSize is S3's limit for one PUT (an object or a part).
const maxObjectSize = 5 << 30

// checkSize refuses, before anything is sent, an upload S3 would refuse
// after the whole body: a single PUT over 5 GiB.
func checkSize(r *http.Request, operation string, payload sigv4.PayloadMode) error {
	if operation != "PutObject" && operation != "UploadPart" {
		return nil
	}
	size := r.ContentLength
	if payload.Streaming() {
		size, _ = decodedLength(r.Header)
	}
	if size > maxObjectSize {
		return s3err.Newf(s3err.ErrEntityTooLarge, "Your proposed upload exceeds the maximum allowed size of 5 GiB; use a multipart upload.")
	}
	return nil
}

// bearerToken exchanges a bucket's API key for an IAM token.
func (h *Handler) bearerToken(ctx context.Context, apiKey, bucket string) (string, error) {
	if h.opts.Tokens == nil {
		return "", s3err.Newf(s3err.ErrNotImplemented, "Backends reached with an IBM Cloud API key are not configured.").WithResource(bucket)
	}
	token, err := h.opts.Tokens.Token(ctx, apiKey)
	switch {
	case errors.Is(err, iam.ErrRejected):
		return "", s3err.Wrapf(err, s3err.ErrAccessDenied, "IBM Cloud IAM rejected the API key configured for bucket %s.", bucket).WithResource(bucket)
	case err != nil:
		return "", s3err.Wrapf(err, s3err.ErrServiceUnavailable, "IBM Cloud IAM did not issue a token for bucket %s; please try again.", bucket).WithResource(bucket)
	}
	return token, nil
}

// checkCopySource authorizes the source of a copy (as a GetObject of the
// source key) and makes sure the copy can be done by the destination's
// backend in one request: same store, same credentials. Anything else would
// fail half-way at the backend.
func (h *Handler) checkCopySource(ctx context.Context, token string, ref copySourceRef, dst *config.Bucket, dstCreds creds.Backend) error {
	srcName, srcKey := ref.bucket, ref.key
	srcEntry, ok := h.buckets.Lookup(srcName)
	src := srcEntry.Bucket
	if !ok {
		return s3err.Newf(s3err.ErrNoSuchBucket, "The specified copy source bucket does not exist.").WithResource(srcName)
	}
	access := s3op.Access{Token: token, Bucket: srcName, Method: http.MethodGet, Key: srcKey, Operation: "GetObject"}
	if err := h.opts.Authorizer.Authorize(ctx, access, src.TTL()); err != nil {
		return err
	}
	srcCreds, err := h.opts.BackendCreds.For(ctx, access, src)
	if err != nil {
		return err
	}
	if src.Scheme != dst.Scheme || src.Endpoint() != dst.Endpoint() || srcCreds != dstCreds {
		return s3err.Newf(s3err.ErrInvalidRequest, "Copying between buckets on different backends or credentials is not supported; source bucket %s.", srcName).WithResource(srcName)
	}
	return nil
}

// fail answers with an S3 error; why goes to the request's log line.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	e := s3err.As(err)
	x.code, x.cause = e.Code, errText(err)
	s3err.Write(w, r, e, x.id())
}

func errText(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) && e.Unwrap() != nil {
		return e.Unwrap().Error()
	}
	return err.Error()
}
