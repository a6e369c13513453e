package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/object-storage-proxy/osp/internal/accesslog"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/s3err"
)

// exchange is the record of one client request, for its access log line
// and metrics.
type exchange struct {
	idDigits  requestID // the request id (see id); filled once, never written again
	start     time.Time
	bucket    string // metrics label: a cos_map bucket, "" or "_unknown"
	operation string
	accessKey string
	forward   *forward   // set once the request goes to a backend
	code      s3err.Code // the S3 error the proxy answered with, if any
	cause     string     // why, for the log; never a secret
	// scheme is the one the client used: its connection's, or a trusted
	// load balancer's X-Forwarded-Proto (for URLs the proxy writes back).
	scheme string
	// The response writer, the forward and the body of the request live
	// here, so that one allocation holds the request's own state. (Kept
	// within 568 bytes, the 576-byte size class with the allocator's
	// header: the request body is bodyRoom, see requestBody, rather than
	// a pointer of its own.)
	writer      responseWriter
	forwardRoom forward
	bodyRoom    clientBody
}

// id is the request's id: a view of its digits, which do not change
// (requestID.view), so a string made for none of its uses.
func (x *exchange) id() string { return x.idDigits.view() }

// requestBody is the request's body, or nil if it has none.
func (x *exchange) requestBody() *clientBody {
	if x.bodyRoom.ReadCloser == nil {
		return nil
	}
	return &x.bodyRoom
}

// bucketLabel keeps metrics cardinality bounded: only cos_map keys become
// label values. A bucket served by a pattern is labelled with the pattern
// ("team-a-*"), never its own name, which any client can vary at will.
func bucketLabel(bucket string, entry config.Entry, served bool) string {
	switch {
	case bucket == "":
		return ""
	case !served:
		return "_unknown"
	}
	return entry.Key
}

// responseWriter records what the proxy sends and gives every response the
// proxy's request id (the backend's moves to x-osp-backend-request-id).
type responseWriter struct {
	http.ResponseWriter
	requestID   [1]string // the header's value, set without allocating
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.wroteHeader, w.status = true, code
		// By the names in canonical form, without Header.Get and Set,
		// which canonicalize them anew; and the backend's id moves in
		// its own slice (its first value, as Get would read it), where
		// Set would make one.
		h := w.Header()
		if ids := h["X-Amz-Request-Id"]; len(ids) > 0 && ids[0] != "" && ids[0] != w.requestID[0] {
			h["X-Osp-Backend-Request-Id"] = ids[:1:1]
		}
		h["X-Amz-Request-Id"] = w.requestID[:]
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom hands a body to the server's own ReadFrom, which splices from a
// TCP source to a plain TCP client.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		bp := copyBuffers.Get().(*[]byte)
		n, err = io.CopyBuffer(writerOnly{w.ResponseWriter}, r, *bp)
		copyBuffers.Put(bp)
	}
	w.bytes += n
	return n, err
}

// writerOnly hides a writer's ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

// Flush sends what is buffered to the client.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clientBody is a client's request body: it counts the bytes read, cuts
// off a client silent for longer than timeout (a read deadline renewed at
// each read, so a long upload is fine while it moves), and keeps the first
// failure for the client's answer.
type clientBody struct {
	io.ReadCloser
	n       int64
	timeout time.Duration
	w       http.ResponseWriter // whose connection's read deadline the timeout sets

	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.timeout > 0 {
		_ = b.conn().SetReadDeadline(time.Now().Add(b.timeout)) // unsupported (HTTP/2 on old Go): no limit
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		if b.timeout > 0 {
			// The server's own watch for a closed connection reads on
			// while the backend works: it must not time out.
			_ = b.conn().SetReadDeadline(time.Time{})
		}
	case err != nil:
		err = b.failed(err)
	}
	return n, err
}

// conn controls the connection the body arrives on. Made at each use, it
// stays on the stack; kept in b, it would be one more allocation per
// request with a body.
func (b *clientBody) conn() *http.ResponseController { return http.NewResponseController(b.w) }

// failed turns a read error into the client's S3 error and records it.
func (b *clientBody) failed(err error) error {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		err = s3err.Wrap(err, s3err.ErrRequestTimeout)
	} else {
		err = s3err.Wrapf(err, s3err.ErrIncompleteBody, "The request body ended before its declared length.")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// failure is the first error reading the body, if any.
func (b *clientBody) failure() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// record writes the access log line and the metrics of a finished request.
func (h *Handler) record(r *http.Request, x *exchange, w *responseWriter, body *clientBody) {
	now := time.Now()
	took := now.Sub(x.start)
	status := w.status
	if !w.wroteHeader {
		status = 499 // the client went away before any answer
	}
	var in int64
	if body != nil {
		in = body.n
	}
	var backend time.Duration
	if x.forward != nil {
		backend = x.forward.backendTime
	}
	if m := h.opts.Metrics; m != nil {
		m.Request(x.bucket, x.operation, status, in, w.bytes, took)
		if x.forward != nil && backend > 0 {
			m.Backend(x.bucket, backend)
		}
		if authFailureCodes[x.code] {
			m.AuthFailure(x.code.String())
		}
	}
	if !h.log.Enabled(r.Context(), accesslog.Level) {
		return // no line, no cost
	}
	line := accesslog.Record{Time: now, RequestID: x.id(), Method: r.Method, Bucket: x.bucket, Operation: x.operation,
		AccessKey: x.accessKey, Status: status, BytesIn: in, BytesOut: w.bytes,
		DurationMS: float64(took.Microseconds()) / 1000, BackendMS: float64(backend.Microseconds()) / 1000,
		Remote: r.RemoteAddr, Error: x.cause}
	if x.code != 0 {
		line.ErrorCode = x.code.String()
	}
	if h.access == nil {
		h.log.LogAttrs(context.Background(), accesslog.Level, accesslog.Message, line.Attrs()...)
		return
	}
	// A refusal's line goes at once, with the warnings; an answered
	// request's may wait to go out with others (Options.AccessLog).
	h.access.Log(&line)
}

// authFailureCodes are the refusals counted as authentication or
// authorization failures.
var authFailureCodes = map[s3err.Code]bool{
	s3err.ErrAccessDenied: true, s3err.ErrSignatureDoesNotMatch: true, s3err.ErrInvalidAccessKeyID: true,
	s3err.ErrRequestTimeTooSkewed: true, s3err.ErrAuthorizationHeaderMalformed: true,
	s3err.ErrAuthorizationQueryParametersError: true,
}
