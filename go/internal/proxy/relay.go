package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/object-storage-proxy/osp/internal/upstream"
)

// relay sends a checked request to its backend, signed anew, and streams
// the answer back. It does the part of httputil.ReverseProxy a re-signing
// S3 proxy needs, with one pass over the headers each way and no
// per-request timer: for small objects the proxy's cost is mostly these
// copies.
func (h *Handler) relay(w *responseWriter, r *http.Request, x *exchange, fw *forward) {
	resp, sent, err := h.roundTrip(r, fw)
	if err != nil {
		h.backendError(w, r, x, fw, err)
		return
	}
	defer sent.release() // deferred first, so it runs once the body is closed
	defer resp.Body.Close()
	h.noteRefusedToken(fw, resp.StatusCode)
	if mayHideBackendError(r, resp) {
		if refusal := judgeBackendError(resp); refusal != nil {
			h.refuseForBackend(w, r, x, fw, refusal)
			return
		}
	} else if r.Method == http.MethodHead && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		// Nothing to hide in a HEAD answer, but the operator should see it.
		x.cause = fmt.Sprintf("backend refused the request: %d (HEAD, no body)", resp.StatusCode)
	}
	if fw.denial != nil && resp.StatusCode == http.StatusOK {
		h.mergeDeleteResult(w, r, x, resp, fw.denial)
		return
	}
	copyResponseHeader(w.Header(), resp.Header)
	body := h.throttleDownload(r, fw, resp.Body)
	flush := resp.ContentLength < 0
	if x.operation == "CompleteMultipartUpload" && resp.StatusCode == http.StatusOK {
		// The backend's own URL out, the client's in (see location.go):
		// the length changes.
		body, flush = newLocationRewriter(body, clientLocation(r, x.scheme)), true
		w.Header().Del("Content-Length")
	}
	w.WriteHeader(resp.StatusCode)
	// S3 keeps slow answers (CompleteMultipartUpload, CopyObject) alive
	// with whitespace in a body of unknown length: pass each piece on at
	// once.
	if err := streamBody(w, body, flush); err != nil {
		// The status line is out: cutting the connection is the only way
		// left to tell the client that the body is incomplete.
		x.cause = fmt.Sprintf("response body cut off: %v", err)
		panic(http.ErrAbortHandler)
	}
}

// noteRefusedToken tells the token cache that a bearer backend refused
// the request's IAM token (401, or 403: IBM COS answers an expired or
// revoked token with either), so that it is fetched anew rather than used
// until its stated expiry; the cache bounds how often (iam.Tokens.Refused).
func (h *Handler) noteRefusedToken(fw *forward, status int) {
	if fw.bearer != "" && h.opts.Tokens != nil && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		h.opts.Tokens.Refused(fw.creds.APIKey, fw.bearer)
	}
}

// Retries of a backend's 500 or 503, as S3 clients do them: only requests
// that are safe to repeat and carry no body to replay.
const (
	maxRetries   = 2
	retryBackoff = 50 * time.Millisecond
)

// retryOn5xx says a request the backend answered with 500 or 503 is sent
// again: a GET, HEAD or DELETE without a body. That is within the one rule
// of what may go to a backend twice (upstream.Idempotent, no body: the
// transport replays the same on a lost connection); a POST never goes
// twice, and a bodiless PUT (a CopyObject) is left to the client.
func retryOn5xx(r *http.Request, fw *forward) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
	default:
		return false
	}
	return upstream.Idempotent(r.Method) && fw.body == nil &&
		(r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody)
}

// roundTrip sends the request to the backend, retrying one that
// retryOn5xx allows when the backend answered with 500 or 503. With the
// response it returns the backendRequest the request was built on, for
// the caller to release once the response's body is closed.
func (h *Handler) roundTrip(r *http.Request, fw *forward) (*http.Response, *backendRequest, error) {
	retryable := retryOn5xx(r, fw)
	for attempt := 0; ; attempt++ {
		b := newBackendRequest()
		out, err := h.outgoing(r, fw, b)
		if err != nil {
			b.release() // not sent: nothing holds it
			return nil, nil, err
		}
		start := time.Now()
		resp, err := h.opts.Transport.RoundTrip(out)
		fw.backendTime += time.Since(start)
		if err != nil {
			// b stays out of the pool: the transport may still hold it.
			return nil, nil, err
		}
		if !retryable || attempt == maxRetries ||
			(resp.StatusCode != http.StatusInternalServerError && resp.StatusCode != http.StatusServiceUnavailable) {
			return resp, b, nil
		}
		discard(resp.Body)
		b.release()
		select {
		case <-r.Context().Done():
			return nil, nil, r.Context().Err()
		case <-time.After(retryBackoff << attempt):
		}
	}
}

// outgoing builds, on b, the backend's request: its URL, the client's
// headers that pass, the body as planned, and the backend's
// authentication.
func (h *Handler) outgoing(r *http.Request, fw *forward, b *backendRequest) (*http.Request, error) {
	host := b.setURL(fw, h.backendHost(fw.bucket))
	b.forwardHeaders(r.Header, fw.signed)
	out := b.request(r, host)
	if fw.copySource != "" {
		out.Header["X-Amz-Copy-Source"] = []string{fw.copySource}
	}
	switch {
	case fw.body != nil:
		fw.body.applyTo(out)
	case r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody:
		out.Body, out.ContentLength = r.Body, r.ContentLength
	}
	b.setPayloadHash(string(fw.payload))
	if fw.bearer == "" {
		b.reserveSignature()
	}
	if err := h.signers.authorize(out, fw, h.opts.Now()); err != nil {
		return nil, err
	}
	return out, nil
}

// copyResponseHeader copies a backend's response headers to the client's,
// in one pass: not the hop-by-hop ones, and x-amz-meta-* names in the
// lower case S3 clients wrote them in (Go's client capitalised them).
func copyResponseHeader(dst, src http.Header) {
	connection := src["Connection"]
	for name, values := range src {
		if hopHeader(name) || (len(connection) > 0 && listsToken(connection, name)) {
			continue
		}
		if strings.HasPrefix(name, "X-Amz-Meta-") {
			name = strings.ToLower(name)
		}
		dst[name] = values
	}
}

// copyBufferSize is the unit of a streamed body: large enough that a
// gigabyte moves in few system calls, small enough that many concurrent
// transfers stay within tens of MiB.
const copyBufferSize = 128 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// streamBody copies a backend's response body to the client. A body of
// unknown length is flushed piece by piece, through a pooled buffer; any
// other goes by io.Copy, so that the backend body and the client's
// connection can move it in the kernel (see upstream's body.WriteTo).
func streamBody(w *responseWriter, body io.Reader, flush bool) error {
	if !flush {
		_, err := io.Copy(w, body)
		return err
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("write to client: %w", werr)
			}
			w.Flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read from backend: %w", err)
		}
	}
}

// discard reads a little of an unwanted body, so its connection can be
// reused when the rest is short, and closes it.
func discard(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	_ = body.Close()
}
