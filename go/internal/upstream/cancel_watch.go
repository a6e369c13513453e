package upstream

import (
	"context"
	"sync"
	"time"

	"github.com/object-storage-proxy/osp/internal/overdue"
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
// hookDelay, found by its overdue.Timer, as h1's closeWatch watches a
// client: a connection busy with short exchanges sees about one timer
// every hookDelay, an idle one none. A context that ends before its hook is
// registered aborts the exchange when it is (AfterFunc runs the hook at
// once for a context already done), within hookDelay of the exchange's
// start. RoundTrip also checks the context before it takes a connection,
// and exchange once the response head is read.
const hookDelay = 100 * time.Millisecond

// cancelWatch is a connection's watch of its running exchange's context.
// Every field is guarded by mu.
type cancelWatch struct {
	mu      sync.Mutex
	overdue overdue.Timer // calls c.registerHook; made by dial
	ctx     context.Context
	stop    func() bool // stops the hook, once registered for ctx
}

// watch begins the watch of an exchange in ctx.
func (c *conn) watch(ctx context.Context) {
	w := &c.cancel
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctx = ctx
	w.overdue.Start()
}

// registerHook, run by the timer, hooks c.abort to the running exchange's
// context once it has run for hookDelay.
func (c *conn) registerHook() {
	w := &c.cancel
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.overdue.Due() {
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
	w.overdue.End()
	w.mu.Unlock()
	return stop == nil || stop()
}
