package upstream

import (
	"errors"
	"io"
	"time"

	"github.com/object-storage-proxy/osp/internal/sockio"
)

// body is a response body that returns its connection to the pool once
// read to its end, and closes it otherwise.
type body struct {
	frame    // the body's bytes on the connection
	t        *Transport
	c        *conn
	written  <-chan error // the request's write, for bodies streamed by sendWithBody
	reusable bool
	done     bool
	err      error // what ended the body: io.EOF when complete
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
	}
	n, err := b.frame.Read(p)
	if err != nil {
		b.err = err
		b.finish(errors.Is(err, io.EOF))
	}
	return n, err
}

// WriteTo sends the rest of the body to w. A body of known length on a
// plain TCP connection goes by w's ReadFrom from the socket itself, after
// what the response head's read buffered: for a client on plain TCP too,
// net/http's server then splices it (splice(2)), so large objects never
// pass through user space. A rest that fits the read buffer is read like
// the head, by sockio's raw reads: splicing it would save nothing, and a
// read through the net.Conn enters Go's scheduler as a blocking call,
// which wakes its monitor thread when every thread was idle (a small
// object whose body came in a segment after its head's).
func (b *body) WriteTo(w io.Writer) (int64, error) {
	rf, canReadFrom := w.(io.ReaderFrom)
	tcp, isTCP := sockio.TCP(b.c.Conn)
	remaining := b.length - b.read // meaningful only for a known length
	if b.done || !canReadFrom || !isTCP || !b.knownLength() || remaining <= readBufferSize {
		return io.Copy(w, readerOnly{b})
	}
	var n int64
	if buffered := min(int64(b.c.br.Buffered()), remaining); buffered > 0 {
		p, _ := b.c.br.Peek(int(buffered)) // cannot fail: the bytes are buffered
		m, err := w.Write(p)
		_, _ = b.c.br.Discard(m)
		n, remaining = n+int64(m), remaining-int64(m)
		if err != nil {
			return n, b.end(err)
		}
	}
	if remaining > 0 {
		m, err := rf.ReadFrom(&io.LimitedReader{R: tcp, N: remaining})
		n, remaining = n+m, remaining-m
		if err == nil && remaining > 0 {
			err = io.ErrUnexpectedEOF // the backend closed early
		}
		if err != nil {
			return n, b.end(err)
		}
		// The socket was read to the body's end and no further, so bytes
		// the backend sent past it are still in the socket, where get's
		// check of the read buffer cannot see them: a connection with
		// anything there must not answer the next request with it.
		if !b.c.open() {
			b.reusable = false
		}
	}
	b.read += n
	b.end(io.EOF)
	return n, nil
}

// end finishes the body with err (io.EOF: complete) and returns the error
// a caller should see.
func (b *body) end(err error) error {
	b.err = err
	b.finish(errors.Is(err, io.EOF))
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// readerOnly hides a body's WriteTo from io.Copy.
type readerOnly struct{ io.Reader }

// Close before the end drops the connection: what is left of the body
// would have to be read before the next response.
func (b *body) Close() error {
	if !b.done {
		b.err = errors.New("upstream: read on closed response body")
		b.finish(false)
	}
	return nil
}

func (b *body) finish(complete bool) {
	b.done = true
	reuse := b.c.unwatch() && complete && b.reusable
	if b.written != nil {
		err, reported := writeOutcome(b.written)
		if !reported {
			// The backend answered without reading the whole body: the
			// rest of it must not be sent, nor the connection reused.
			reuse = false
			_ = b.c.Close() // unblocks the write
			err = <-b.written
		}
		reuse = reuse && err == nil
	}
	b.t.release(b.c, reuse)
}

// writeReportGrace is how long a finished response waits for its streamed
// upload's writer to report. A writer whose last write is done reports at
// once, but may not have been scheduled yet when the answer's last byte is
// read: without the wait, such a connection would be closed as if the
// backend had stopped reading. One that is still blocked after it (the
// backend answered early and reads no more) is cut off.
const writeReportGrace = 20 * time.Millisecond

// writeOutcome is the streamed upload writer's result, if it reports
// within writeReportGrace.
func writeOutcome(written <-chan error) (err error, reported bool) {
	select {
	case err := <-written:
		return err, true
	default:
	}
	wait := time.NewTimer(writeReportGrace)
	defer wait.Stop()
	select {
	case err := <-written:
		return err, true
	case <-wait.C:
		return nil, false
	}
}
