package h1

import (
	"context"
	"testing"
	"time"
)

// requestContext behaves as the context.WithCancel it replaced: Done and
// Err before and after cancel, derived contexts canceled by the time cancel
// returns (without a goroutine of the context package's per derived
// context), context.AfterFunc's function run once, and a stopped one not.
func TestRequestContext(t *testing.T) {
	var ctx requestContext
	if ctx.Err() != nil {
		t.Fatalf("Err before cancel = %v", ctx.Err())
	}
	done := ctx.Done()
	select {
	case <-done:
		t.Fatal("Done closed before cancel")
	default:
	}
	child, cancelChild := context.WithCancel(&ctx)
	defer cancelChild()
	timed, cancelTimed := context.WithTimeout(&ctx, time.Hour)
	defer cancelTimed()
	stopped, cancelStopped := context.WithCancel(&ctx)
	cancelStopped() // its stop unregisters it
	ran := make(chan struct{})
	context.AfterFunc(&ctx, func() { close(ran) })
	never := context.AfterFunc(&ctx, func() { t.Error("a stopped AfterFunc ran") })
	if !never() {
		t.Fatal("stop of a pending AfterFunc = false")
	}
	if len(ctx.after) != 3 {
		t.Fatalf("%d functions registered; want 3 (child, timed, AfterFunc)", len(ctx.after))
	}

	ctx.cancel()
	ctx.cancel() // a second cancel does nothing
	if ctx.Err() != context.Canceled || context.Cause(&ctx) != context.Canceled {
		t.Fatalf("Err, Cause after cancel = %v, %v", ctx.Err(), context.Cause(&ctx))
	}
	for name, c := range map[string]context.Context{"Done": &ctx, "child": child, "timed": timed, "stopped": stopped} {
		select {
		case <-c.Done():
		default:
			t.Fatalf("%s not done once cancel returned", name)
		}
	}
	if child.Err() != context.Canceled {
		t.Fatalf("child's Err = %v", child.Err())
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("context.AfterFunc's function did not run")
	}

	// Derived after the cancel: done at once.
	late, cancelLate := context.WithCancel(&ctx)
	defer cancelLate()
	if late.Err() != context.Canceled {
		t.Fatalf("context derived after cancel: Err = %v", late.Err())
	}
}

// A context canceled before anyone asked for Done still gives a closed
// channel.
func TestRequestContextDoneAfterCancel(t *testing.T) {
	var ctx requestContext
	ctx.cancel()
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done not closed")
	}
}

// Of many derived contexts, those canceled first leave the list and the
// rest are all canceled with the request's.
func TestRequestContextManyDerived(t *testing.T) {
	var ctx requestContext
	var kept []context.Context
	for i := range 100 {
		child, cancel := context.WithCancel(&ctx)
		defer cancel()
		if i%3 == 0 {
			cancel()
		} else {
			kept = append(kept, child)
		}
	}
	if len(ctx.after) != len(kept) {
		t.Fatalf("%d functions registered; want %d", len(ctx.after), len(kept))
	}
	ctx.cancel()
	for i, c := range kept {
		if c.Err() == nil {
			t.Fatalf("derived context %d not canceled", i)
		}
	}
}
