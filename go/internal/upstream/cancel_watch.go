package upstream

import (
	"context"
	"sync"
	"time"
)

// Cancelling a request (the client went away) must unblock whatever read
// or write of its exchange is pending, and end it: a hook on the request's
// context (context.AfterFunc) aborts the connection. Registering and
// stopping that hook costs about a microsecond and five allocations (the
// hook, its stop function, and the context's done channel and list of
// children, made for the first hook of a fresh context): for a small
// request, the largest single cost of its exchange, for one that is over
// long before a cancellation could matter to it.
//
// So a connection registers the hook only for an exchange that has run for
// hookDelay, as h1's closeWatch watches a client: a timer per connection,
// set when an exchange starts and it is not already set, and set again
// for the rest of the delay when it finds a newer exchange running. A
// connection busy with short exchanges sees about one timer every
// hookDelay, an idle one none. A context that ends before its hook is
// registered aborts the exchange when it is (AfterFunc runs the hook at
// once for a context already done), within hookDelay of the exchange's
// start. RoundTrip also checks the context before it takes a connection,
// and exchange once the response head is read.
const hookDelay = 100 * time.Millisecond

// cancelWatch is a connection's watch of its running exchange's context.
// Every field is guarded by mu.
type cancelWatch struct {
	mu    sync.Mutex
	timer *time.Timer // made by the first watch; calls c.registerHook
	set   bool        // the timer is set
	ctx   context.Context
	began time.Time   // the running exchange's start
	stop  func() bool // stops the hook, once registered for ctx
}

// watch begins the watch of an exchange in ctx.
func (c *conn) watch(ctx context.Context) {
	w := &c.cancel
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctx, w.began = ctx, time.Now()
	if w.set {
		return
	}
	w.set = true
	if w.timer == nil {
		w.timer = time.AfterFunc(hookDelay, c.registerHook)
	} else {
		w.timer.Reset(hookDelay)
	}
}

// registerHook, run by the timer, hooks c.abort to the running exchange's
// context once it has run for hookDelay.
func (c *conn) registerHook() {
	w := &c.cancel
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.ctx == nil || w.stop != nil: // no exchange, or hooked already
		w.set = false
	case time.Since(w.began) < hookDelay: // one begun since the timer was set
		w.timer.Reset(hookDelay - time.Since(w.began))
	default:
		w.set = false
		w.stop = context.AfterFunc(w.ctx, c.abort)
	}
}

// unwatch ends the watch of the running exchange. It reports false if the
// hook ran, or is running: the connection was aborted.
func (c *conn) unwatch() bool {
	w := &c.cancel
	w.mu.Lock()
	stop := w.stop
	w.ctx, w.stop = nil, nil
	w.mu.Unlock()
	return stop == nil || stop()
}
