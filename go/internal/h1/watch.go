package h1

import (
	"sync"
	"time"

	"github.com/object-storage-proxy/osp/internal/overdue"
)

// watchDelay is how long a request without a body runs before its
// connection is watched for the client going away (which cancels the
// request's context). Watching costs a read and its teardown; a request
// answered sooner does without.
const watchDelay = time.Second

// closeWatch reads from a connection while its handler runs, to see the
// client go away. The handler of a request without a body never reads the
// connection, and the next request's reads wait until the watch stops.
//
// A connection has one, reused by each of its requests in turn, whose
// overdue.Timer finds a request that has run for watchDelay (about one
// timer a second on a busy connection, none on an idle one).
//
// Every field is guarded by mu. start and stop are called on the
// connection's goroutine, one request after the other; stop waits for a
// run that is reading, so no run acts on a later request than its own.
type closeWatch struct {
	c *conn

	mu      sync.Mutex
	overdue overdue.Timer   // calls run; made by newConn
	ctx     *requestContext // the running request's
	reading bool            // a run reads the connection
	// headDeadline says the connection's read deadline may still be the
	// request head's, which accept leaves for a request without a body:
	// the run clears it before it reads, unless the handler set its own.
	headDeadline bool
	read         sync.WaitGroup // the run that reads, if any
	gone         bool           // the client closed or reset the connection
}

// start watches c for the client going away once the request it begins
// has run for watchDelay; its going away cancels ctx.
func (w *closeWatch) start(c *conn, ctx *requestContext) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c, w.ctx = c, ctx
	w.gone, w.headDeadline = false, true
	w.overdue.Start()
}

// run, called by the timer, reads the connection of a request that has
// run for watchDelay.
func (w *closeWatch) run() {
	w.mu.Lock()
	if !w.overdue.Due() {
		w.mu.Unlock()
		return
	}
	w.reading = true
	w.read.Add(1)
	c, ctx := w.c, w.ctx
	if w.headDeadline {
		w.headDeadline = false
		c.deadline.Clear(c.rwc) // stop takes mu, for the next request's to see
	}
	w.mu.Unlock()
	defer w.read.Done()

	var b [1]byte
	n, err := c.rwc.Read(b[:])
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reading = false
	switch {
	case n == 1:
		c.src.unread(b[0]) // a pipelined request's first byte
	case err != nil && w.overdue.Running(): // not stop waking the read
		w.gone = true
		ctx.cancel()
	}
}

// stop ends the watch of the running request and reports whether the
// connection is still usable.
func (w *closeWatch) stop() bool {
	w.mu.Lock()
	w.overdue.End()
	reading, gone := w.reading, w.gone
	w.mu.Unlock()
	if reading {
		_ = w.c.deadline.Set(w.c.rwc, aLongTimeAgo) // wakes the watch's read
		w.read.Wait()
		_ = w.c.deadline.Set(w.c.rwc, time.Time{})
		w.mu.Lock()
		gone = w.gone
		w.mu.Unlock()
	}
	return !gone
}

// handlerDeadline notes that the handler sets the connection's read
// deadline: the run must keep it.
func (w *closeWatch) handlerDeadline() {
	w.mu.Lock()
	w.headDeadline = false
	w.mu.Unlock()
}

// close stops the timer of a connection that ends.
func (w *closeWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.overdue.Stop()
}

var aLongTimeAgo = time.Unix(1, 0)
