package h1

import (
	"context"
	"sync"
	"time"
)

// requestContext is a request's context: it is canceled when the handler
// returns, when the client goes away, or when the server closes, as a
// context.WithCancel of a server-wide context would be. That one cost two
// allocations a request and a lock on the server's context, shared by
// every connection, to register and unregister each request; this one
// lives in the request's exchange, no one registers with anyone, and its
// Done channel is made only if asked for. Server.Close reaches the
// requests running through their connections (conn.running).
//
// It has no values and no deadline, as the server's context had none.
type requestContext struct {
	mu    sync.Mutex
	done  chan struct{} // made by the first Done, or by cancel if none was
	err   error         // context.Canceled once canceled
	after []afterFunc   // the AfterFunc calls not stopped yet
	seq   uint64        // numbers the AfterFunc calls, for their stop
	// afterInline holds after's first call: the upstream transport's
	// cancellation hook, context.AfterFunc, makes one per request.
	afterInline [1]afterFunc
}

type afterFunc struct {
	id uint64
	f  func()
}

func (c *requestContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *requestContext) Value(any) any { return nil }

func (c *requestContext) String() string { return "h1.requestContext" }

func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil { // not canceled: cancel sets it
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *requestContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc is what the context package calls instead of starting a
// goroutine per context derived from this one (it looks for this method:
// its afterFuncer interface). f is called once this context is canceled,
// unless stop comes first.
//
// The context package is the only caller (the interface is unexported),
// and what it passes cancels a child context: it does not block, and
// context.AfterFunc's function is started on its own goroutine by that
// cancel. So cancel calls f itself, as a cancelCtx cancels its children:
// once cancel returns, every derived context is done.
func (c *requestContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		f()
		return func() bool { return false }
	}
	c.seq++
	id := c.seq
	if c.after == nil {
		c.after = c.afterInline[:0]
	}
	c.after = append(c.after, afterFunc{id, f})
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		// From the newest: a derived context usually ends before the
		// next is made. The order of the rest does not matter.
		for i := len(c.after) - 1; i >= 0; i-- {
			if c.after[i].id == id {
				last := len(c.after) - 1
				c.after[i] = c.after[last]
				c.after[last] = afterFunc{} // drop f for the collector
				c.after = c.after[:last]
				return true
			}
		}
		return false // called already, or stopped
	}
}

// cancel cancels the context; later calls do nothing.
func (c *requestContext) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done == nil {
		c.done = closedChan
	} else {
		close(c.done)
	}
	after := c.after // no one changes it now: AfterFunc and stop see err
	c.after = nil
	c.mu.Unlock()
	for _, a := range after {
		a.f()
	}
}

// closedChan is the Done channel of a context canceled before anyone asked
// for its channel.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()
