package readdeadline

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// recorder records the deadlines set on it.
type recorder struct{ set []time.Time }

func (r *recorder) SetReadDeadline(t time.Time) error {
	r.set = append(r.set, t)
	return nil
}

// Waits bounded by d, one after the other, set the deadline about once
// per tenth of d, each between d and d+d/10 from its start.
func TestBoundKeepsADeadlineAboutDAway(t *testing.T) {
	const d = 10 * time.Second
	var (
		conn recorder
		r    Deadline
	)
	start := time.Unix(1000, 0)
	for step := time.Duration(0); step < 10*d; step += 10 * time.Millisecond {
		now := start.Add(step)
		r.Bound(&conn, now, d)
		got := conn.set[len(conn.set)-1]
		if got.Before(now.Add(d)) || got.After(now.Add(d+d/10)) {
			t.Fatalf("at %v: deadline %v from now, want between %v and %v", step, got.Sub(now), d, d+d/10)
		}
	}
	if n := len(conn.set); n < 95 || n > 101 {
		t.Fatalf("%d deadlines set over 10 d, want about 100", n)
	}
}

// A wait with another bound, a clear, or a deadline someone else set is
// not taken for one Bound may keep.
func TestBoundSetsWhatItCannotKeep(t *testing.T) {
	var (
		conn recorder
		r    Deadline
	)
	now := time.Unix(1000, 0)
	expectSet := func(what string, want bool, set bool) {
		t.Helper()
		if set != want {
			t.Fatalf("%s: set %v, want %v", what, set, want)
		}
	}
	expectSet("first bound", true, r.Bound(&conn, now, time.Minute))
	expectSet("same bound", false, r.Bound(&conn, now, time.Minute))
	expectSet("shorter bound", true, r.Bound(&conn, now, time.Second)) // a minute away is too far
	expectSet("longer bound", true, r.Bound(&conn, now, time.Minute))  // a second away is too near
	expectSet("clear", true, r.Clear(&conn))
	expectSet("clear again", false, r.Clear(&conn))
	expectSet("bound after clear", true, r.Bound(&conn, now, time.Minute))
	expectSet("no bound", true, r.Bound(&conn, now, 0))
	if last := conn.set[len(conn.set)-1]; !last.IsZero() {
		t.Fatalf("no bound set %v, want none", last)
	}
	r.Bound(&conn, now, time.Minute)
	r.Forget()
	expectSet("bound after another's deadline", true, r.Bound(&conn, now, time.Minute))
	r.Forget()
	expectSet("clear after another's deadline", true, r.Clear(&conn))
	_ = r.Set(&conn, now.Add(time.Minute+time.Second))
	expectSet("bound after an exact deadline", false, r.Bound(&conn, now, time.Minute))
}

func TestPassed(t *testing.T) {
	var (
		conn recorder
		r    Deadline
	)
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	if r.Passed(timeout) {
		t.Fatal("passed without a deadline set")
	}
	r.Bound(&conn, time.Now(), time.Second)
	if !r.Passed(timeout) || r.Passed(errors.New("reset")) {
		t.Fatal("Passed does not tell a deadline's error")
	}
}
