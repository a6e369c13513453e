package limits

import (
	"context"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// memoryStore keeps the counts in this process: the default for one proxy. Each table is
// bounded. Rate limiters live in LRU caches: evicting the least recently used key only gives
// that key a fresh burst, which is a limit's mildest failure. Use counts cannot be evicted
// that way (a forgotten count re-opens a spent URL), so they leave only when their URL
// expires, and a full table refuses new URLs (ErrFull).
type memoryStore struct {
	uses      *useCounts
	requests  *lru.Cache[string, *rate.Limiter]
	bandwidth *lru.Cache[string, *rate.Limiter]
}

func newMemoryStore(entries int) (*memoryStore, error) {
	requests, err := lru.New[string, *rate.Limiter](entries)
	if err != nil {
		return nil, fmt.Errorf("limits: request limiters: %w", err)
	}
	bandwidth, err := lru.New[string, *rate.Limiter](entries)
	if err != nil {
		return nil, fmt.Errorf("limits: bandwidth limiters: %w", err)
	}
	return &memoryStore{uses: newUseCounts(entries), requests: requests, bandwidth: bandwidth}, nil
}

func (m *memoryStore) CountUse(_ context.Context, key string, expires time.Time) (int64, error) {
	return m.uses.add(key, expires, time.Now())
}

func (m *memoryStore) AllowRequest(_ context.Context, key string, limit RequestLimit) (bool, time.Duration, error) {
	lim := limiterFor(m.requests, key, rate.Limit(limit.PerSecond), limit.Burst)
	now := time.Now()
	if lim.AllowN(now, 1) {
		return true, 0, nil
	}
	// Refused without reserving (a reservation given back under concurrency leaves the bucket
	// in debt): the wait is the time the missing part of a token takes to come.
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing / limit.PerSecond * float64(time.Second)), nil
}

// WaitBytes is rate.Limiter.WaitN spelled out (reserve, then sleep) for one difference: WaitN
// refuses at once, with an error of its own, a wait that would pass ctx's deadline, which the
// Limiter could not tell from a store failure; this waits until ctx actually ends and returns
// ctx's error.
func (m *memoryStore) WaitBytes(ctx context.Context, key string, bytesPerSecond int64, burst, n int) error {
	r := limiterFor(m.bandwidth, key, rate.Limit(bytesPerSecond), burst).ReserveN(time.Now(), n)
	if !r.OK() {
		return fmt.Errorf("limits: %d bytes exceed the bandwidth burst of %d", n, burst)
	}
	if err := sleep(ctx, r.Delay()); err != nil {
		r.Cancel() // give back the tokens that were not used
		return err
	}
	return nil
}

// limiterFor returns key's limiter, made or retuned to limit and burst (a reload may change
// them; the limiter keeps its tokens).
func limiterFor(cache *lru.Cache[string, *rate.Limiter], key string, limit rate.Limit, burst int) *rate.Limiter {
	lim, ok := cache.Get(key)
	if !ok {
		fresh := rate.NewLimiter(limit, burst)
		if prev, found, _ := cache.PeekOrAdd(key, fresh); found {
			lim = prev
		} else {
			lim = fresh
		}
	}
	if lim.Limit() != limit {
		lim.SetLimit(limit)
	}
	if lim.Burst() != burst {
		lim.SetBurst(burst)
	}
	return lim
}

func (m *memoryStore) Ping(context.Context) error { return nil }
func (m *memoryStore) Shared() bool               { return false }
func (m *memoryStore) String() string             { return "memory" }
func (m *memoryStore) Close() error               { return nil }
