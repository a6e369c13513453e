package main

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

func TestCallLimiter(t *testing.T) {
	l := newCallLimiter(2)
	if !l.acquire("hmac_fetcher") || !l.acquire("validator") {
		t.Fatal("the first two calls must get a slot")
	}
	if l.acquire("hmac_fetcher") {
		t.Fatal("a third call got a slot beyond the bound")
	}
	if l.inFlight("hmac_fetcher") != 1 || l.inFlight("validator") != 1 || l.running.Load() != 2 {
		t.Fatalf("counts: %d %d %d", l.inFlight("hmac_fetcher"), l.inFlight("validator"), l.running.Load())
	}
	l.release("validator")
	if !l.acquire("bucket_creds_fetcher") {
		t.Fatal("a released slot is free again")
	}
	l.setLimit(1) // a reload lowering the bound: running calls finish
	l.release("hmac_fetcher")
	if l.acquire("hmac_fetcher") {
		t.Fatal("one call still runs at a bound of 1")
	}
	l.release("bucket_creds_fetcher")
	if !l.acquire("hmac_fetcher") {
		t.Fatal("no call runs: a slot must be free")
	}
	var e *s3err.Error
	if err := errSlowDown("hmac_fetcher", 1); !errors.As(err, &e) || e.Code.String() != "SlowDown" || e.Status() != 503 {
		t.Fatalf("got %v", err)
	}
}

func TestCallLimiterUnderContention(t *testing.T) {
	l := newCallLimiter(10)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.acquire("validator") {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	if granted.Load() != 10 || l.inFlight("validator") != 10 {
		t.Fatalf("granted %d, in flight %d; want exactly the bound, 10", granted.Load(), l.inFlight("validator"))
	}
}
