// Package overdue finds the work of a connection that has run for a
// delay, with one timer per connection that is not set and stopped per
// piece of work.
package overdue

import "time"

// Timer finds a connection's running work (a request, an exchange) once
// it has run for a delay, for its owner to act on: h1 watches the client
// of a request running a second, upstream hooks the cancellation of an
// exchange running 100 ms. Most work ends much sooner, and then should
// cost next to nothing.
//
// So a connection has one timer, reused by each piece of work in turn,
// not set and stopped per piece: setting a timer earlier than the others
// wakes the network poller, which costs more than the rest of a small
// request's timers. Start sets the timer only when it is not set already;
// when it fires, Due finds no work running and leaves it unset (the next
// Start sets it), or finds work begun since the timer was set and sets it
// again for the rest of that work's delay, or finds work that has run for
// the delay. A connection busy with short work sees about one timer per
// delay, and an idle one none after its last piece of work.
//
// A Timer has no lock of its own: every method is called with the owner's
// lock held, the one the owner's fire function takes before it calls Due,
// so that the hot path (Start, End) takes one lock, the owner's.
type Timer struct {
	delay time.Duration
	fire  func() // the owner's: takes its lock, calls Due, acts if due
	timer *time.Timer
	// epoch is when the timer was made: a start is kept as the time since,
	// as time.Since of a time with a monotonic reading reads only the
	// monotonic clock, about 20 ns less than time.Now, which reads the
	// wall clock too.
	epoch   time.Time
	set     bool          // the timer is set
	running bool          // work runs: between Start and End
	acted   bool          // Due found the running work due
	began   time.Duration // the running work's start, since epoch
}

// New returns the Timer of a connection, whose timer calls fire once the
// work it finds may be due. fire takes the owner's lock, and calls Due to
// know whether to act.
func New(delay time.Duration, fire func()) Timer {
	return Timer{delay: delay, fire: fire}
}

// Start notes that a piece of work begins now, and sets the timer unless
// it is set. The first Start makes the timer.
func (t *Timer) Start() {
	if t.timer == nil {
		t.epoch = time.Now()
	}
	t.running, t.acted, t.began = true, false, time.Since(t.epoch)
	if t.set {
		return
	}
	t.set = true
	if t.timer == nil {
		t.timer = time.AfterFunc(t.delay, t.fire)
	} else {
		t.timer.Reset(t.delay)
	}
}

// End notes that the running work is over: it is not due, whenever the
// timer fires.
func (t *Timer) End() {
	t.running = false
}

// Running reports whether work runs: between Start and End or Stop.
func (t *Timer) Running() bool {
	return t.running
}

// Due, called by the fire function, reports whether the running work has
// run for the delay: the owner acts on it, once (Due reports it only the
// first time). Otherwise it sets the timer again for the rest of the
// delay of work begun since the timer was set, or leaves it unset.
func (t *Timer) Due() bool {
	if !t.running || t.acted {
		t.set = false // the next Start sets it
		return false
	}
	if rest := t.delay - (time.Since(t.epoch) - t.began); rest > 0 {
		t.timer.Reset(rest)
		return false
	}
	t.set, t.acted = false, true
	return true
}

// Stop ends the running work and stops the timer, for a connection that
// ends.
func (t *Timer) Stop() {
	t.running = false
	if t.timer != nil && t.timer.Stop() {
		t.set = false
	}
}
