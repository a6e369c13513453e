package h1

import (
	"context"
	"sync"
	"time"
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
// A connection has one, and one timer, reused by each of its requests in
// turn: start and stop are called on the connection's goroutine, one
// request after the other, and stop waits until a run the timer began has
// ended, so that no run of one request can see the next one's fields.
type closeWatch struct {
	c      *conn
	timer  *time.Timer // made by the first start; runs run
	cancel context.CancelFunc
	runs   sync.WaitGroup // the timer's run to come for this request, if any

	mu       sync.Mutex
	stopped  bool // the request is done; a run starting now does nothing
	watching bool // a run is reading the connection
	gone     bool // the client closed or reset the connection
}

// start watches c for the client going away once d has passed; cancel
// cancels the request's context.
func (w *closeWatch) start(c *conn, d time.Duration, cancel context.CancelFunc) {
	w.c, w.cancel = c, cancel
	w.stopped, w.watching, w.gone = false, false, false
	w.runs.Add(1)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.run)
	} else {
		w.timer.Reset(d)
	}
}

func (w *closeWatch) run() {
	defer w.runs.Done()
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.watching = true
	w.mu.Unlock()
	var b [1]byte
	n, err := w.c.rwc.Read(b[:])
	if n == 1 {
		w.c.src.unread(b[0]) // a pipelined request's first byte
		return
	}
	w.mu.Lock()
	aborted := w.stopped
	w.mu.Unlock()
	if err != nil && !aborted {
		w.gone = true
		w.cancel()
	}
}

// stop ends the watch and reports whether the connection is still usable.
func (w *closeWatch) stop() bool {
	if w.timer.Stop() {
		w.runs.Done() // run will not be called
		return true
	}
	// run has begun, or is about to.
	w.mu.Lock()
	w.stopped = true
	watching := w.watching
	w.mu.Unlock()
	if watching {
		_ = w.c.rwc.SetReadDeadline(aLongTimeAgo) // wakes the watch's read
	}
	w.runs.Wait()
	if watching {
		_ = w.c.rwc.SetReadDeadline(time.Time{})
	}
	return !w.gone
}

var aLongTimeAgo = time.Unix(1, 0)
