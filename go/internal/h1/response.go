package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// writeBufferSize is the largest answer sent in one write: the head and a
// body of up to about 32 KiB. A longer body of known length leaves by the
// kernel once the buffer is full (bufio.Writer.ReadFrom hands the rest to
// TCPConn.ReadFrom).
const writeBufferSize = 32 << 10

// writers are pooled: a connection holds one only while it answers.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

// response is the http.ResponseWriter of one request.
type response struct {
	c      *conn
	req    *http.Request
	body   *requestBody // nil for a request without a body
	header http.Header
	bw     *bufio.Writer // taken when the head is written

	status      int
	length      int64 // the declared Content-Length; -1 if none
	written     int64 // body bytes written
	wroteHeader bool  // the status is set
	sentHeader  bool  // the head is in bw
	chunked     bool
	noBody      bool // HEAD, 204 or 304
	closeAfter  bool
	err         error // the first write failure; the connection is done
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader sets the status. Informational statuses are not passed on:
// 100 Continue is sent when the handler first reads the body.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := firstValue(w.header, "Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	w.closeAfter = w.req.Close || !keepAlive(w.req) ||
		httpguts.HeaderValuesContainsToken(w.header["Connection"], "close")
}

// keepAlive says whether the client lets the connection carry another
// request: HTTP/1.1 unless it says close (req.Close), HTTP/1.0 only if it
// asks.
func keepAlive(req *http.Request) bool {
	return req.ProtoAtLeast(1, 1) || httpguts.HeaderValuesContainsToken(req.Header["Connection"], "keep-alive")
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.bodyAllowed(len(p)); err != nil || len(p) == 0 {
		return 0, err
	}
	if w.noBody {
		return len(p), nil // HEAD: the head tells the length; the body is not sent
	}
	w.sendHeader(false)
	if w.chunked {
		w.bw.Write(strconv.AppendInt(w.c.scratch[:0], int64(len(p)), 16))
		w.bw.WriteString("\r\n")
	}
	n, err := w.bw.Write(p)
	if w.chunked {
		w.bw.WriteString("\r\n")
	}
	w.written += int64(n)
	return n, w.fail(err)
}

func (w *response) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// bodyAllowed refuses n more body bytes when they would break framing.
func (w *response) bodyAllowed(n int) error {
	switch {
	case w.err != nil:
		return w.err
	case w.noBody && w.req.Method != http.MethodHead && n > 0:
		return http.ErrBodyNotAllowed
	case w.length >= 0 && w.written+int64(n) > w.length:
		return http.ErrContentLength
	}
	return nil
}

// ReadFrom copies a body to the client. One of known length is read into
// the write buffer behind the head, so a small answer leaves in one write;
// beyond the buffer the kernel moves it (splice from a TCP source).
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		return io.Copy(io.Discard, src)
	}
	if w.length < 0 {
		return io.Copy(writerOnly{w}, src) // chunked: a chunk per read
	}
	w.sendHeader(false)
	n, err := w.bw.ReadFrom(src)
	w.written += n
	if w.written > w.length {
		// The source gave more than the head announced: the client can no
		// longer tell where this answer ends.
		w.closeAfter = true
		return n, w.fail(http.ErrContentLength)
	}
	if err != nil && w.bw.Buffered() > 0 {
		return n, err // src failed; bw is sound
	}
	return n, w.fail(err)
}

// writerOnly hides ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// Flush sends what is buffered; it fixes the framing (chunked when no
// Content-Length was set).
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	w.sendHeader(false)
	_ = w.fail(w.bw.Flush())
}

// FlushError is Flush for http.ResponseController.
func (w *response) FlushError() error {
	w.Flush()
	return w.err
}

// SetReadDeadline bounds the handler's reads of the request body (see
// http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.watch.handlerDeadline() // first: the watch no longer clears the deadline
	w.c.deadline.Forget()
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline bounds the writes of the answer.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

func (w *response) fail(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}
	return err
}

// sendHeader puts the head in the write buffer, once. final says the
// handler has returned: a body never written is then empty, and the head
// says Content-Length: 0 instead of chunked.
func (w *response) sendHeader(final bool) {
	if w.sentHeader {
		return
	}
	w.sentHeader = true
	h := w.header
	if w.length < 0 && !w.noBody {
		switch {
		case final:
			w.length = 0
			h["Content-Length"] = []string{"0"}
		case w.req.ProtoAtLeast(1, 1):
			w.chunked = true
			h["Transfer-Encoding"] = []string{"chunked"}
		default:
			w.closeAfter = true // an HTTP/1.0 body without a length ends with the connection
		}
	}
	if w.body != nil && !w.body.drainable() {
		w.closeAfter = true
	}
	if w.c.srv.closing.Load() {
		w.closeAfter = true // Shutdown: this answer is the connection's last
	}
	if w.closeAfter {
		if !httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
			h["Connection"] = []string{"close"}
		}
	} else if !w.req.ProtoAtLeast(1, 1) {
		h["Connection"] = []string{"keep-alive"}
	}
	w.bw = writers.Get().(*bufio.Writer)
	w.bw.Reset(w.c.rwc)
	w.bw.Write(statusLine(w.c.scratch[:0], w.status))
	writeHeader(w.bw, h)
	if _, ok := h["Date"]; !ok {
		// Written, not added to the handler's header, as net/http does:
		// no string or slice per answer.
		w.bw.WriteString("Date: ")
		w.bw.Write(w.c.date(time.Now()))
		w.bw.WriteString("\r\n")
	}
	w.bw.WriteString("\r\n")
}

func statusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// finish completes the answer after the handler returned and reports
// whether the connection can carry another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil {
		w.sendHeader(true)
		if w.chunked {
			w.bw.WriteString("0\r\n\r\n")
		}
		_ = w.fail(w.bw.Flush())
	}
	if w.bw != nil {
		w.bw.Reset(nil)
		writers.Put(w.bw)
		w.bw = nil
	}
	if w.length >= 0 && !w.noBody && w.written != w.length {
		return false // the answer is shorter than announced; only a close tells the client
	}
	if w.err != nil || w.closeAfter {
		if w.body != nil && !w.body.eof {
			w.c.refused = true // unread body bytes may follow; drain them before the close
		}
		return false
	}
	return w.body == nil || w.body.drain()
}

var _ interface {
	http.ResponseWriter
	http.Flusher
	io.ReaderFrom
	io.StringWriter
} = (*response)(nil)

// requestBody is a request's body as the handler reads it: the first read
// sends 100 Continue to a client that waits for it.
type requestBody struct {
	io.ReadCloser // http.ReadRequest's body; its Close would read it all
	w             *response
	read          int64
	expect        bool // the client sent Expect: 100-continue
	continued     bool // 100 Continue was sent
	eof           bool
	failed        bool
}

// drainable says whether what the handler has left of the body, so far,
// can be read and dropped to keep the connection: not after a failed read,
// nor a body the client waits to send until 100 Continue, which will not
// come once the answer has begun, nor a rest longer than maxDrain.
func (b *requestBody) drainable() bool {
	if b.eof {
		return true
	}
	if b.failed || b.expect && !b.continued {
		return false
	}
	length := b.w.req.ContentLength
	return length >= 0 && length-b.read <= maxDrain
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.expect && !b.continued && !b.w.sentHeader {
		b.continued = true
		if _, err := io.WriteString(b.w.c.rwc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return 0, err
		}
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case err != nil:
		b.failed = true // a timeout, say: the client is out of step
	}
	return n, err
}

// Close leaves the rest of the body to drain.
func (b *requestBody) Close() error { return nil }

const (
	// maxDrain is how much of a body the handler left unread is read and
	// dropped to keep the connection; a longer rest closes it.
	maxDrain = 256 << 10
	// drainTimeout bounds the wait for that rest.
	drainTimeout = 2 * time.Second
)

// drain reads what the handler left of the body, and reports whether the
// connection is still in step with the client.
func (b *requestBody) drain() bool {
	if b.eof {
		return true
	}
	if !b.drainable() {
		b.w.c.refused = true
		return false
	}
	c := b.w.c
	_ = c.deadline.Set(c.rwc, time.Now().Add(drainTimeout))
	_, err := io.CopyN(io.Discard, b.ReadCloser, maxDrain+1)
	_ = c.deadline.Set(c.rwc, time.Time{})
	if errors.Is(err, io.EOF) {
		return true
	}
	b.w.c.refused = true
	return false
}
