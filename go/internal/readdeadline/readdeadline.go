// Package readdeadline sets a connection's read deadline lazily, for a
// connection that bounds each of many short waits (a request head, a
// response head) by the same timeout.
//
// Each SetReadDeadline that moves the deadline costs a runtime timer
// update, which can also wake the network poller: twice per request on a
// busy connection if every wait set its own. So a wait bounded by d gets
// a deadline d+d/10 from now (the slack), which later waits bounded by d
// keep for as long as it is still at least d away: a connection busy with
// short requests updates its timer about once per tenth of the timeout.
// The price is the bound's precision: a wait bounded by d is cut off
// between d and d+d/10 after it starts, never sooner.
package readdeadline

import (
	"errors"
	"os"
	"time"
)

// Setter is the connection whose read deadline is kept.
type Setter interface {
	SetReadDeadline(t time.Time) error
}

// Deadline tracks the read deadline it set on one connection. Its zero
// value says the connection has none; a Deadline is used by one goroutine
// at a time.
type Deadline struct {
	until   time.Time // the deadline set, if any
	unknown bool      // set by someone else: until says nothing
}

// slack is how much later than needed a deadline bounding waits of d is
// set, and may be found and kept.
func slack(d time.Duration) time.Duration { return d / 10 }

// Bound bounds the reads of conn to between d and d+d/10 from now (now is
// the caller's clock reading); d <= 0 clears the deadline. It reports
// whether the deadline was set anew (for tests).
func (r *Deadline) Bound(conn Setter, now time.Time, d time.Duration) bool {
	if d <= 0 {
		return r.Clear(conn)
	}
	need := now.Add(d)
	if !r.unknown && !r.until.IsZero() && !r.until.Before(need) && r.until.Sub(need) <= slack(d) {
		return false // still at least d away, and not much more
	}
	r.until, r.unknown = need.Add(slack(d)), false
	_ = conn.SetReadDeadline(r.until)
	return true
}

// Clear removes the deadline of conn, if it may have one, and reports
// whether it had to.
func (r *Deadline) Clear(conn Setter) bool {
	if !r.unknown && r.until.IsZero() {
		return false
	}
	r.until, r.unknown = time.Time{}, false
	_ = conn.SetReadDeadline(time.Time{})
	return true
}

// Set is SetReadDeadline on conn, exactly t, for a deadline that is not a
// wait's bound.
func (r *Deadline) Set(conn Setter, t time.Time) error {
	r.until, r.unknown = t, false
	return conn.SetReadDeadline(t)
}

// Forget notes that someone else sets the deadline of the connection:
// the next Bound or Clear sets it, whatever it was.
func (r *Deadline) Forget() { r.until, r.unknown = time.Time{}, true }

// IsSet reports whether a deadline may be set on the connection.
func (r *Deadline) IsSet() bool { return r.unknown || !r.until.IsZero() }

// Passed says a read failed on a deadline that may be set: a wait's
// bound, left set, rather than the connection's end.
func (r *Deadline) Passed(err error) bool {
	return r.IsSet() && errors.Is(err, os.ErrDeadlineExceeded)
}
