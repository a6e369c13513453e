package main

import (
	"fmt"
	"sync/atomic"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// callableKinds are the host callables a server calls.
var callableKinds = []string{"validator", "bucket_creds_fetcher", "hmac_fetcher", "rate_limit_fetcher"}

// callLimiter bounds the host callable calls of one server that run at
// once. Each call holds an OS thread (a cgo call) until the callable
// returns, whether or not its waiter gave up: without a bound, clients could
// pile up hung calls until Go aborts the process at 10,000 threads. A slot
// is taken before the call and given back only when the call has returned,
// by the goroutine that made it. One limiter serves a server for its whole
// life: a reload changes the bound, not the count of calls still running.
type callLimiter struct {
	limit   atomic.Int64
	running atomic.Int64
	byKind  map[string]*atomic.Int64 // fixed at creation, so read without a lock
}

func newCallLimiter(limit int) *callLimiter {
	l := &callLimiter{byKind: make(map[string]*atomic.Int64, len(callableKinds))}
	for _, kind := range callableKinds {
		l.byKind[kind] = new(atomic.Int64)
	}
	l.setLimit(limit)
	return l
}

// setLimit changes the bound; calls running beyond a lowered bound finish,
// and new ones are refused until the count drops below it.
func (l *callLimiter) setLimit(limit int) { l.limit.Store(int64(limit)) }

// acquire takes a slot for a call of kind, or reports that the bound is
// reached.
func (l *callLimiter) acquire(kind string) bool {
	// Compare-and-swap, not add-then-undo: a refused caller never raises
	// the count, so it cannot make another caller's check fail spuriously.
	for {
		n := l.running.Load()
		if n >= l.limit.Load() {
			return false
		}
		if l.running.CompareAndSwap(n, n+1) {
			break
		}
	}
	if n := l.byKind[kind]; n != nil {
		n.Add(1)
	}
	return true
}

// release gives back the slot of a call of kind that has returned.
func (l *callLimiter) release(kind string) {
	if n := l.byKind[kind]; n != nil {
		n.Add(-1)
	}
	l.running.Add(-1)
}

// inFlight is the number of calls of kind running now (for metrics).
func (l *callLimiter) inFlight(kind string) int64 {
	if n := l.byKind[kind]; n != nil {
		return n.Load()
	}
	return 0
}

// errSlowDown is the client's answer when the bound is reached: S3's own
// code for "too many requests now", which SDKs retry with backoff.
// The cause, for the log, says which callable was busy.
func errSlowDown(kind string, limit int64) error {
	return s3err.Wrap(fmt.Errorf("%s: %d callable calls already running (max_callable_calls)", kind, limit), s3err.ErrSlowDown)
}
