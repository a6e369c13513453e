package upstream

import (
	"net"
	"time"

	"github.com/object-storage-proxy/osp/internal/sockio"
)

// A request that fits in the connection's write buffer is not flushed
// when it is written: it is sent from inside the first read of its answer
// (sockio's ReadAfter). A read sent right after the request would almost
// always find nothing yet, and cost a system call and a return to the
// poller before the wait; from inside the read, the wait begins at once,
// and whatever the request provokes still wakes it.
//
// This holds on a connection on which nothing is due until the request is
// out, which a pooled connection is, with one exception: a backend that
// closed it while it was idle. Its end arrived before the read and is not
// seen by the wait. The request sent into a closed connection is answered
// by a reset, which is seen (RoundTrip then sends a replayable request
// again on a new connection, as when it reads the end); but a backend
// that only shut down its sending side, and still reads, would leave the
// wait to Options.ResponseHeaderTimeout. Backends close idle connections
// after seconds, so only a new connection, or one idle for less than
// sendOnReadIdle, sends on the read: under load, all of them.

// sendOnReadIdle is how long a connection may have been idle and still
// send its next request on the read.
const sendOnReadIdle = 500 * time.Millisecond

// socketReader is what a connection's reader (br) reads: the socket, but
// the first read after sendOnRead sends the request bw holds.
type socketReader struct {
	net.Conn
	sock      *sockio.Conn // the plain socket; nil under TLS
	flush     func() error // bw's Flush, a method value made once
	sendFirst bool         // the next read sends bw first
}

func (r *socketReader) Read(p []byte) (int, error) {
	if !r.sendFirst {
		return r.Conn.Read(p)
	}
	r.sendFirst = false
	return r.sock.ReadAfter(r.flush, p)
}

// send sends what bw holds of a request written after writesBefore
// writes to the socket: at the first read of its answer if the connection
// is a plain socket that may (c.sendOnRead) and none of the request has
// gone out yet (the buffer was not filled, and flushed, on the way), else
// now.
func (c *conn) send(writesBefore int) error {
	if c.sendOnRead && c.src.sock != nil && c.sock.writes == writesBefore && c.bw.Buffered() > 0 {
		c.src.sendFirst = true
		return nil
	}
	return c.bw.Flush()
}

// sendFailed says the send of a request from inside the read of its
// answer failed, and clears the reader's turn to send: the read that
// failed returned that error.
func (c *conn) sendFailed() bool {
	c.src.sendFirst = false
	return c.writeFailed()
}
