package overdue

import (
	"sync"
	"testing"
	"time"
)

const delay = 50 * time.Millisecond

// owner is a connection as the Timer's callers are: its lock guards the
// Timer, and its fire function acts on work that is due.
type owner struct {
	mu      sync.Mutex
	overdue Timer
	work    int       // the running piece of work's number
	began   time.Time // its start
	fires   int       // the timer's calls of fire
	acted   chan acted
}

type acted struct {
	work    int
	ranFor  time.Duration // how long the work had run when acted on
	running bool
}

func newOwner() *owner {
	o := &owner{acted: make(chan acted, 10)}
	o.overdue = New(delay, o.fire)
	return o
}

func (o *owner) fire() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fires++
	if o.overdue.Due() {
		o.acted <- acted{o.work, time.Since(o.began), o.overdue.Running()}
	}
}

func (o *owner) start(work int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.work, o.began = work, time.Now()
	o.overdue.Start()
}

func (o *owner) end() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.overdue.End()
}

func (o *owner) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.overdue.Stop()
}

func (o *owner) fireCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fires
}

// noAction fails t if the owner acts within d.
func (o *owner) noAction(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case a := <-o.acted:
		t.Fatalf("acted on work %d after %v", a.work, a.ranFor)
	case <-time.After(d):
	}
}

func (o *owner) wantAction(t *testing.T, work int) {
	t.Helper()
	select {
	case a := <-o.acted:
		if a.work != work || a.ranFor < delay || !a.running {
			t.Fatalf("acted on work %d after %v (running %v), want work %d after at least %v", a.work, a.ranFor, a.running, work, delay)
		}
	case <-time.After(20 * delay):
		t.Fatalf("work %d not acted on", work)
	}
}

// Work that runs for the delay is acted on, once.
func TestActsOnWorkThatRanTheDelay(t *testing.T) {
	o := newOwner()
	defer o.stop()
	o.start(1)
	o.wantAction(t, 1)
	o.noAction(t, 3*delay)
	o.mu.Lock()
	if o.overdue.Due() {
		t.Error("Due reported work acted on already")
	}
	o.mu.Unlock()
	o.end()
	if n := o.fireCount(); n != 1 {
		t.Fatalf("%d fires, want 1", n)
	}
}

// Work begun after the timer was set is acted on a delay after its own
// start, not the timer's.
func TestReArmsForWorkBegunLater(t *testing.T) {
	o := newOwner()
	defer o.stop()
	o.start(1)
	o.end()
	time.Sleep(delay / 2)
	o.start(2) // the timer, set by 1, fires about delay/2 into 2
	o.wantAction(t, 2)
	if n := o.fireCount(); n != 2 {
		t.Fatalf("%d fires, want 2: one that set the timer again, one that acted", n)
	}
}

// Work that ends, or a Timer stopped, before the delay is not acted on;
// the timer of an idle connection fires once and is not set again, until
// the next work.
func TestNoActionOnWorkThatEnded(t *testing.T) {
	o := newOwner()
	defer o.stop()
	o.start(1)
	o.end()
	o.noAction(t, 4*delay)
	if n := o.fireCount(); n != 1 {
		t.Fatalf("%d fires on an idle connection, want 1", n)
	}
	o.start(2) // sets the timer again
	o.wantAction(t, 2)
	o.end()

	o.start(3)
	o.stop()
	o.noAction(t, 3*delay)
	if n := o.fireCount(); n != 2 {
		t.Fatalf("%d fires, want 2: none after Stop", n)
	}
}

// A connection busy with short work sees about one timer per delay, and
// acts on none of it.
func TestBusyConnectionFiresAboutOncePerDelay(t *testing.T) {
	o := newOwner()
	defer o.stop()
	begin := time.Now()
	for i := 0; time.Since(begin) < 5*delay; i++ {
		o.start(i)
		time.Sleep(delay / 20)
		o.end()
	}
	o.noAction(t, 2*delay)
	// Each fire finds work begun since the timer was set, or none: the
	// next fire comes a delay after that work's start, at the earliest.
	if n := o.fireCount(); n < 3 || n > 7 {
		t.Fatalf("%d fires in %v of work and 2 delays idle (delay %v), want about 6", n, time.Since(begin), delay)
	}
}

// A short piece of work's cost: its Start and End, under the owner's
// lock, allocate nothing once the timer is made.
func BenchmarkShortWork(b *testing.B) {
	o := newOwner()
	defer o.stop()
	b.ReportAllocs()
	for b.Loop() {
		o.start(0)
		o.end()
	}
}
