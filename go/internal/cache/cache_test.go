package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCollapsesConcurrentMisses(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	c := New(16, func(k string) string { return k }, func(ctx context.Context, k string) (string, time.Duration, error) {
		calls.Add(1)
		<-release
		return "v-" + k, time.Minute, nil
	})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := c.Get(context.Background(), "k"); err != nil || v != "v-k" {
				t.Errorf("got %q, %v", v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("loader called %d times, want 1", n)
	}
}

func TestExpiryAndZeroTTL(t *testing.T) {
	now := time.Unix(0, 0)
	var calls int
	ttl := time.Second
	c := New(16, func(k string) string { return k }, func(ctx context.Context, k string) (int, time.Duration, error) {
		calls++
		return calls, ttl, nil
	})
	c.now = func() time.Time { return now }
	get := func() int {
		v, err := c.Get(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if get() != 1 || get() != 1 {
		t.Fatal("second get within TTL must hit the cache")
	}
	now = now.Add(time.Second)
	if get() != 2 {
		t.Fatal("entry must expire after its TTL")
	}
	ttl = 0
	now = now.Add(time.Second)
	if get() != 3 || get() != 4 {
		t.Fatal("TTL 0 must ask every time")
	}
}

func TestErrorsAreNotCachedAndSizeIsBounded(t *testing.T) {
	fail := true
	c := New(2, func(k int) string { return string(rune('a' + k)) }, func(ctx context.Context, k int) (int, time.Duration, error) {
		if fail {
			return 0, time.Minute, errors.New("boom")
		}
		return k, time.Minute, nil
	})
	if _, err := c.Get(context.Background(), 1); err == nil {
		t.Fatal("want error")
	}
	fail = false
	for k := 0; k < 5; k++ {
		if v, err := c.Get(context.Background(), k); err != nil || v != k {
			t.Fatalf("got %d, %v", v, err)
		}
	}
	if c.Len() != 2 {
		t.Fatalf("len %d, want 2", c.Len())
	}
}
