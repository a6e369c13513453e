package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// maxSmallBody bounds the request bodies read whole before the request is
// sent (readSmallBody), instead of streamed by a goroutine of their own
// while the answer is read (sendWithBody).
//
// The bound is what makes sending them on the caller's goroutine safe: a
// backend may answer early without reading the body, and the caller only
// reads that answer once its write returns. The write returns when the
// request is in the socket buffers (this side's send buffer, the
// backend's receive buffer), whether or not the backend reads: a head and
// 16 KiB fit there with room to spare on default settings (on Linux a
// 16 KiB send buffer and a receive window of some 64 KiB on a new
// connection), where 64 KiB and a head would not. 16 KiB holds the 4 KiB
// objects that dominate small uploads (and the proxy's framing of them),
// with room for small XML bodies (CompleteMultipartUpload, tagging);
// larger bodies stream as before, and the pooled buffer of each request
// in flight stays small.
const maxSmallBody = 16 << 10

var smallBodies = sync.Pool{New: func() any { b := make([]byte, maxSmallBody); return &b }}

// smallBody is a request body read whole before the request was sent,
// with the head it goes under.
type smallBody struct {
	head  requestHead
	bytes []byte
	buf   *[]byte // from smallBodies
}

// readSmallBody reads req's body whole if it is small, of a known length,
// and writeRequest would write req itself. It returns false for any other
// request, whose body streams.
//
// The body is read before a connection is even taken: a client body that
// fails (the proxy's reader fails at its end if the body does not match
// its hash or signatures), or is shorter or longer than its
// Content-Length, never sends a byte to a backend. The error is then the
// one writeBody returns. The body is closed, as req.Write closes it.
func readSmallBody(req *http.Request) (b smallBody, ok bool, err error) {
	if !hasBody(req) || req.ContentLength <= 0 || req.ContentLength > maxSmallBody {
		return smallBody{}, false, nil
	}
	head, ok := plainHead(req)
	if !ok {
		return smallBody{}, false, nil
	}
	buf := smallBodies.Get().(*[]byte)
	b = smallBody{head: head, bytes: (*buf)[:head.length], buf: buf}
	if err := b.read(req.Body); err != nil {
		b.release()
		return smallBody{}, false, err
	}
	return b, true, nil
}

func (b *smallBody) read(body io.ReadCloser) (err error) {
	defer func() {
		if cerr := body.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	n := 0
	for n < len(b.bytes) {
		m, err := body.Read(b.bytes[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return bodyCopyError(err)
		}
	}
	// A body longer than announced is read to its end, and refused.
	extra, err := io.Copy(io.Discard, body)
	if err != nil {
		return bodyCopyError(err)
	}
	if length := int64(len(b.bytes)); int64(n)+extra != length {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", length, int64(n)+extra)
	}
	return nil
}

// write writes req's head and the body read ahead, as writeRequest writes
// them.
func (b *smallBody) write(w *bufio.Writer, req *http.Request) error {
	if err := b.head.write(w, req); err != nil {
		return err
	}
	_, err := w.Write(b.bytes)
	return err
}

// release returns the buffer to the pool; b is not used afterwards.
func (b *smallBody) release() {
	smallBodies.Put(b.buf)
	b.buf, b.bytes = nil, nil
}

// sendSmall sends req with its body read ahead: head and body in one
// write, then reads the response head. sent reports that the whole request
// went out; the connection is reusable only then.
//
// Nothing can fail now but the socket: the backend answered early and
// closed. As in sendWithBody, an answer it sent first may still be on its
// way, and is what the caller gets.
func (t *Transport) sendSmall(c *conn, req *http.Request, b *smallBody, into *response) (resp *http.Response, f frame, sent bool, err error) {
	writes := c.sock.writes
	_ = b.write(c.bw, req) // the writer's error is sticky: send reports it
	werr := c.send(writes)
	switch {
	case werr != nil:
		c.awaitHead(earlyAnswerGrace)
	case t.opts.ResponseHeaderTimeout > 0: // the wait starts when the request is out
		c.awaitHead(t.opts.ResponseHeaderTimeout)
	}
	resp, f, err = readResponse(c, req, into)
	if err != nil && werr == nil && c.sendFailed() { // sent from inside the read, which it ended
		werr = c.sock.err
		c.awaitHead(earlyAnswerGrace)
		resp, f, err = readResponse(c, req, into)
	}
	c.endHeadWait(&f)
	switch {
	case err == nil:
		return resp, f, werr == nil, nil
	case werr != nil:
		return nil, frame{}, false, fmt.Errorf("send request to %s: %w", c.key, werr) // the cause
	}
	return nil, frame{}, false, err
}
