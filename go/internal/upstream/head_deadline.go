package upstream

import "time"

// The wait for a response head is bounded by a read deadline on the
// connection (Options.ResponseHeaderTimeout, or earlyAnswerGrace after a
// failed upload). Setting a deadline and clearing it again costs a timer
// update each, and for most responses the clearing is wasted: a small
// object's body arrives with its head, and is read from the buffer
// without another read of the socket. So the deadline is cleared only
// when the socket is read again for anything but a response head:
//
//   - a body that is not wholly buffered (endHeadWait);
//   - the liveness check, which a passed deadline would fail (open);
//   - a streamed upload, whose head wait starts only once it is written
//     (exchange, before sendWithBody).
//
// Every other read of the socket is a response head's, whose wait is
// bounded first (awaitHead). The bound is set lazily (package
// readdeadline): a deadline a previous head's wait left, still about d
// away, is kept, so a connection busy with small responses updates its
// timer about once per tenth of the timeout, not once per request; a head
// is then waited for between d and d+d/10.

// awaitHead bounds the wait for a response head to d from now (to within
// a tenth of d, later).
func (c *conn) awaitHead(d time.Duration) {
	c.headDeadline.Bound(c.Conn, time.Now(), d)
}

// endHeadWait ends the wait for a response head framed by f: the deadline
// is cleared unless the rest of the response is in the read buffer
// already (or there is none), when it is left until the socket is read
// again.
func (c *conn) endHeadWait(f *frame) {
	if !f.buffered() {
		c.clearHeadDeadline()
	}
}

// clearHeadDeadline removes a deadline left from a response head.
func (c *conn) clearHeadDeadline() {
	c.headDeadline.Clear(c.Conn)
}

// deadlinePassed says a read failed on a response head's deadline left
// set, which must then be cleared.
func (c *conn) deadlinePassed(err error) bool {
	return c.headDeadline.Passed(err)
}
