package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/net/http/httpguts"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// forward is everything the rewrite and the signer need about one request,
// decided before the request leaves the proxy.
type forward struct {
	target target
	// clientPath is the client's path as it wrote it: the backend's path
	// is often the same bytes or their tail, which setURL then takes
	// rather than making a new string (tailOrJoin).
	clientPath  string
	bucket      *config.Bucket
	creds       creds.Backend
	query       sigv4.Query       // the client's, parsed once
	payload     sigv4.PayloadMode // what the backend is told, and signed
	presigned   bool              // the client's auth parameters are in the query
	signed      []string          // the header names the client signed (see forwards)
	copySource  string            // the copy source as authorized, canonical; "" for none
	body        *upstreamBody     // a decoded aws-chunked body, or nil to pass through
	bearer      string            // an IAM token for an API-key backend; "" to sign with HMAC
	denial      *deleteDenial     // keys of a DeleteObjects the validator refused, added to the backend's result
	backendTime time.Duration     // until the backend's response headers
	accessKey   string            // the authenticated client key, whose bandwidth limit applies
	rate        config.RateLimit  // its limit (limits.go)
}

// The sets of header names below are switches, not maps: they are asked
// about every header of every request, and a switch on a constant set
// costs a few comparisons where a map costs a hash of the name.

// droppedHeader: these never reach a backend, signed or not: the client's
// own authentication (the proxy signs anew and sets Authorization,
// X-Amz-Date and X-Amz-Content-Sha256 itself), proxy and forwarding
// headers (also X-Forwarded-*, see isDropped), and Expect (the proxy
// already answered 100-continue when it started reading the body).
// Hop-by-hop headers are dropped too (see hopHeader). They may repeat: a
// chain of load balancers adds one X-Forwarded-For each.
func droppedHeader(name string) bool {
	switch name {
	case "Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
		"Expect", "Forwarded", "Via", "X-Real-Ip":
		return true
	}
	return false
}

// hopHeader: these belong to one connection, not to the request or
// response (RFC 9110, section 7.6.1), and are never passed on.
// Content-Length is set by the transport from the body actually sent.
func hopHeader(name string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// unsignedAllowed: these are the headers S3 clients legitimately leave unsigned
// that still reach the backend. Each is safe because it cannot widen what
// the validator granted:
//   - Content-Length: framing; the transport sets it from the body
//     actually sent, whatever the client wrote.
//   - Content-Type: minio-go and presigned-PUT uploaders leave it
//     unsigned; it only labels the uploader's own object.
//   - Cache-Control: the AWS SDK for JavaScript v3 never signs it (its
//     signer always leaves it out); like Content-Type it only describes
//     the uploader's own object, or asks for a fresh read.
//   - Content-MD5: only makes the backend check the body more strictly.
//   - User-Agent: informational.
//   - Range, If-Match, If-None-Match, If-Modified-Since,
//     If-Unmodified-Since: they only narrow what a permitted request
//     returns or does; browsers and media players send them unsigned on
//     presigned GETs.
func unsignedAllowed(name string) bool {
	switch name {
	case "Content-Length", "Content-Type", "Cache-Control", "Content-Md5", "User-Agent",
		"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since":
		return true
	}
	return false
}

// listHeaders are the S3 headers whose value is a comma-separated list,
// which SDKs send as one line per item (aws-sdk-go-v2 does for
// GetObjectAttributes). Given more than once, such a header is passed on
// as one line, its values joined with ',': exactly the value SigV4 signed
// (it canonicalizes repeated headers that way), so the backend reads the
// list the client signed and no other. Any other header given twice is
// refused (checkForwarding).
var listHeaders = map[string]bool{
	"X-Amz-Object-Attributes":          true,
	"X-Amz-Optional-Object-Attributes": true,
}

// connectionOptions are the Connection tokens that name no header.
var connectionOptions = []string{"close", "keep-alive", "upgrade", "te"}

// backendHost is where the requests of one cos_map entry go: its
// endpoint (host[:port]) and, for an entry that names a bucket rather
// than a pattern of them, that bucket's virtual host on it.
type backendHost struct {
	endpoint string
	bucket   string // the one bucket of the entry, or ""
	virtual  string // bucket.endpoint
}

// hostOf is the backendHost of b, the cos_map entry of key ("" or a
// pattern: none of its virtual hosts is joined in advance).
func hostOf(key string, b *config.Bucket) backendHost {
	e := backendHost{endpoint: b.Endpoint()}
	if key != "" && b.AddressingStyle == config.VirtualStyle {
		e.bucket, e.virtual = key, key+"."+e.endpoint
	}
	return e
}

// virtualHost is bucket's host on e: the one joined in advance when it is
// e's bucket (a pattern never equals the bucket name it matches).
func (e backendHost) virtualHost(bucket string) string {
	if bucket == e.bucket && e.virtual != "" {
		return e.virtual
	}
	return bucket + "." + e.endpoint
}

// setURL points b's URL where a request for fw's bucket, key and query
// goes on e (fw.bucket's backend), and returns the Host it names.
func (b *backendRequest) setURL(fw *forward, e backendHost) (host string) {
	bucket := fw.bucket
	host = e.endpoint
	var escapedPath string
	switch {
	case bucket.AddressingStyle == config.VirtualStyle:
		host = e.virtualHost(fw.target.bucket)
		escapedPath = tailOrJoin(fw.clientPath, "/", fw.target.escapedKey)
	case fw.target.escapedKey != "":
		escapedPath = tailOrJoin(fw.clientPath, "/", sigv4.Encode(fw.target.bucket), "/", fw.target.escapedKey)
	default:
		escapedPath = tailOrJoin(fw.clientPath, "/", sigv4.Encode(fw.target.bucket))
	}
	// escapedPath is canonical SigV4 encoding, so it always unescapes.
	path, _ := url.PathUnescape(escapedPath)
	b.url = url.URL{
		Scheme:   bucket.Scheme,
		Host:     host,
		Path:     path,
		RawPath:  escapedPath,
		RawQuery: canonicalQueryOrder(fw.query.Params, fw.presigned),
	}
	return host
}

// tailOrJoin is parts joined: the tail of s when s ends with exactly
// those bytes (the backend's path is most often the client's own, or its
// tail), else a new string. Either way the same bytes.
func tailOrJoin(s string, parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > len(s) {
		return strings.Join(parts, "")
	}
	tail := s[len(s)-n:]
	rest := tail
	for _, p := range parts {
		if !strings.HasPrefix(rest, p) {
			return strings.Join(parts, "")
		}
		rest = rest[len(p):]
	}
	return tail
}

// The forwarding rule decides, in this one place, which of a client's
// headers reach the backend (forwards is the rule, checkForwarding the
// refusals, forwardHeaders the copy). A request header is passed on only
// if
//
//	(a) the client signed it (its name is in signed: the Authorization
//	    header's SignedHeaders, or a presigned URL's X-Amz-SignedHeaders;
//	    parsed, not verified, when signatures are not checked), or
//	(b) it is on the allowlist of headers S3 clients leave unsigned
//	    (unsignedAllowed, where each entry says why it is safe), or
//	(c) the proxy sets it itself: Authorization, X-Amz-Date and
//	    X-Amz-Content-Sha256, the copy source as it authorized it, and the
//	    framing headers of a body it re-frames (upstreamBody.applyTo).
//
// Proxy, forwarding and hop-by-hop headers are never passed on, signed or
// not (droppedHeader, hopHeader, X-Forwarded-*). Everything else is
// dropped, and its name (never its value) logged at debug level.
//
// Some requests are refused instead (checkForwarding), as a header could
// make the backend read them differently from what was verified and
// authorized:
//   - an unsigned x-amz-* header: 403 AccessDenied, as S3 answers (so
//     also when signatures are not checked);
//   - a header that would be passed on and appears more than once (in any
//     letter case): 400 InvalidArgument; a backend may take either copy
//     (a list header, listHeaders, is joined into one instead);
//   - a Connection header naming anything but close, keep-alive, upgrade,
//     te or a header dropped anyway: 400 InvalidArgument; an intermediary
//     honouring it would remove, after authorization, a header the backend
//     should get (X-Amz-Copy-Source turned a checked copy into a plain
//     PutObject).
//
// Header names with '_' are refused before authentication (see screen).

// forwards reports whether the forwarding rule passes the header name (as
// Go's server writes it) on to the backend.
func forwards(name string, signed []string) bool {
	return !isDropped(name) && (unsignedAllowed(name) || containsFold(signed, name))
}

// checkForwarding refuses a request whose headers the forwarding rule
// cannot pass on unambiguously, and returns the names of those it drops.
func checkForwarding(in http.Header, signed []string) (dropped []string, err error) {
	if err := checkConnection(in["Connection"], signed); err != nil {
		return nil, err
	}
	var unsigned []string
	for name, values := range in {
		switch {
		case isDropped(name):
		case !httpguts.ValidHeaderFieldName(name) || name != textproto.CanonicalMIMEHeaderKey(name):
			// Go's server writes every name it accepts canonically; any
			// other could pair with a canonical one as two copies. A name
			// that is no token at all (empty, say) the transport would
			// not write, after the signer had signed it.
			return nil, s3err.Newf(s3err.ErrInvalidArgument, "The header name %q is not valid.", truncate(name))
		case forwards(name, signed):
			if len(values) > 1 && !listHeaders[name] {
				return nil, s3err.Newf(s3err.ErrInvalidArgument, "The %s header appears more than once.", truncate(strings.ToLower(name)))
			}
		case isAmzHeader(name):
			unsigned = append(unsigned, truncate(strings.ToLower(name)))
		default:
			dropped = append(dropped, name)
		}
	}
	if len(unsigned) > 0 {
		// All of them, as S3 names them.
		return nil, sigv4.HeadersNotSigned(unsigned)
	}
	return dropped, nil
}

// forwardHeaders copies to b's header map the headers of a request
// checkForwarding accepted that the backend gets, x-amz-meta-* names in
// lower case as S3 clients write them. The values are in's own slices:
// nothing changes them.
func (b *backendRequest) forwardHeaders(in http.Header, signed []string) {
	out := b.header
	for name, values := range in {
		if !forwards(name, signed) {
			continue
		}
		if strings.HasPrefix(name, "X-Amz-Meta-") {
			name = strings.ToLower(name)
		}
		if len(values) > 1 && listHeaders[name] {
			values = []string{joinList(values)}
		}
		out[name] = values
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = b.userAgent[:] // "", not Go's own: the transport then sends none
	}
}

// joinList joins a list header's lines as SigV4 canonicalizes them: each
// value trimmed, runs of spaces made one, then joined with ','.
func joinList(values []string) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(parts, ",")
}

// isDropped reports whether a header never reaches a backend, signed or
// not.
func isDropped(name string) bool {
	return droppedHeader(name) || hopHeader(name) || strings.HasPrefix(name, "X-Forwarded-")
}

// checkConnection refuses a Connection header that names a header the
// backend would otherwise get, or one that must never be removed on the
// way: any x-amz-*, Authorization, Host, Content-Length,
// Transfer-Encoding, a signed or an allowlisted header (present or not).
// It may name connection options and headers the proxy drops anyway.
func checkConnection(values, signed []string) error {
	for _, v := range values {
		for token := range strings.SplitSeq(v, ",") {
			token = strings.TrimSpace(token)
			if token == "" || containsFold(connectionOptions, token) {
				continue
			}
			name := textproto.CanonicalMIMEHeaderKey(token)
			switch {
			case isAmzHeader(name), name == "Authorization", name == "Host", name == "Content-Length",
				name == "Transfer-Encoding", unsignedAllowed(name), containsFold(signed, name):
				return s3err.Newf(s3err.ErrInvalidArgument, "The Connection header may not name %s.", truncate(token))
			}
		}
	}
	return nil
}

func isAmzHeader(name string) bool {
	return len(name) >= len("x-amz-") && strings.EqualFold(name[:len("x-amz-")], "x-amz-")
}

// containsFold reports whether list holds s in any letter case. Lists are
// short (signed headers, connection options): a linear search beats a
// lower-cased copy of every name.
func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// truncate keeps client-supplied text in error messages short.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
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
// in the client's order, so that the signer's parse of the query
// (URL.Query) reads the parameters as the proxy did (a raw '+', say). The
// signer then writes the query back in its canonical form, sorted: that is
// what the backend receives, byte for byte what was signed. The client's
// presigned authentication parameters are left out: the proxy signs anew.
func canonicalQueryOrder(params []sigv4.QueryParam, dropPresign bool) string {
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
	if err := s.signerFor(fw.creds).SignHTTP(req.Context(), c, req, string(fw.payload), "s3", fw.bucket.Region, now); err != nil {
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
	} else if bodyErr := x.requestBody().failure(); bodyErr != nil {
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
		e = s3err.Wrapf(err, s3err.ErrIncompleteBody, "The request was cut off by the client before it completed.")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		e = s3err.Wrapf(err, s3err.ErrServiceUnavailable, "The backend of bucket %s is unreachable.", bucket)
	case isTimeout(err):
		e = s3err.Wrapf(err, s3err.ErrGatewayTimeout, "The backend of bucket %s did not answer in time.", bucket)
	default:
		e = s3err.Wrapf(err, s3err.ErrBadGateway, "The backend of bucket %s failed to answer.", bucket)
	}
	h.fail(w, r, x, e.WithResource(bucket))
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
