package limits

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Full of unexpired counts, the memory store refuses a new URL rather than forget a count, and
// keeps counting the URLs it holds. (TestUseCountsDropOnlyExpired shows room made by expiry.)
func TestMemoryUseCountsFailClosedWhenFull(t *testing.T) {
	l := openLimiter(t, "memory:", Options{MemoryEntries: 3, Policies: Policies{Uses: FailOpen}})
	ctx, expires := context.Background(), time.Now().Add(time.Hour)
	held := []string{signature(), signature(), signature()}
	for _, sig := range held {
		if d, _ := l.UsePresigned(ctx, sig, 2, expires); !d.Allowed {
			t.Fatalf("use of a URL while there is room: %+v", d)
		}
	}
	// Full: even with a FailOpen policy for uses (that policy is about Redis being away).
	d, err := l.UsePresigned(ctx, signature(), 2, expires)
	if err != nil || d.Allowed || d.Fallback != FailClosed || !errors.Is(d.Err, ErrFull) {
		t.Errorf("new URL with the table full: %+v, %v; want refused with ErrFull", d, err)
	}
	if d, _ := l.UsePresigned(ctx, held[0], 2, expires); !d.Allowed || d.Uses != 2 {
		t.Errorf("second use of a held URL with the table full: %+v", d)
	}
	if d, _ := l.UsePresigned(ctx, held[0], 2, expires); d.Allowed || d.Uses != 3 {
		t.Errorf("third use of a 2-use URL: %+v", d)
	}
	if h := l.Health(ctx); !h.Reachable || h.Shared {
		t.Errorf("a full table marked the memory store down: %+v", h)
	}
}

func TestUseCountsDropOnlyExpired(t *testing.T) {
	u := newUseCounts(10)
	now := time.Now()
	for i := range 10 {
		if _, err := u.add(fmt.Sprint(i), now.Add(time.Duration(i+1)*time.Second), now); err != nil {
			t.Fatal(err)
		}
	}
	// 3.5 s later the URLs expiring at 1, 2 and 3 s are gone, the others kept with their counts.
	later := now.Add(3500 * time.Millisecond)
	if n, err := u.add("5", now.Add(6*time.Second), later); err != nil || n != 2 {
		t.Errorf("a live count: %d, %v", n, err)
	}
	if n, err := u.add("0", now.Add(time.Hour), later); err != nil || n != 1 {
		t.Errorf("an expired key comes back fresh: %d, %v", n, err)
	}
	if got := u.len(); got != 8 {
		t.Errorf("%d counts held, want 8", got)
	}
}

// Rate limiters are bounded by key in an LRU: an evicted key only starts with a fresh burst.
func TestMemoryLimitersBounded(t *testing.T) {
	store, err := newMemoryStore(3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		key := fmt.Sprint("AK", i)
		if ok, _, _ := store.AllowRequest(ctx, key, RequestLimit{PerSecond: 1, Burst: 1}); !ok {
			t.Errorf("first request of %s refused", key)
		}
		if err := store.WaitBytes(ctx, key, 1<<20, 64<<10, 1024); err != nil {
			t.Fatal(err)
		}
	}
	if store.requests.Len() != 3 || store.bandwidth.Len() != 3 {
		t.Errorf("limiters held: %d request, %d bandwidth; want 3 each", store.requests.Len(), store.bandwidth.Len())
	}
}

// A reload may change a key's limit: the key's limiter follows.
func TestMemoryLimitFollowsChanges(t *testing.T) {
	store, err := newMemoryStore(10)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ok, _, _ := store.AllowRequest(ctx, "AK", RequestLimit{PerSecond: 1, Burst: 1}); !ok {
		t.Fatal("first request refused")
	}
	if ok, _, _ := store.AllowRequest(ctx, "AK", RequestLimit{PerSecond: 1, Burst: 1}); ok {
		t.Fatal("second request allowed at 1/s burst 1")
	}
	// Raised to 1000/s, the next token comes in a millisecond, not in a second.
	store.AllowRequest(ctx, "AK", RequestLimit{PerSecond: 1000, Burst: 1})
	time.Sleep(5 * time.Millisecond)
	if ok, _, _ := store.AllowRequest(ctx, "AK", RequestLimit{PerSecond: 1000, Burst: 1}); !ok {
		t.Error("request refused after the limit was raised to 1000/s")
	}
}
