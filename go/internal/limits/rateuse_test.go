package limits

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// AllowUse takes from the same request budget as Allow (on Redis: the borrowed GCRA and
// redis_rate's read one key), and a throttled attempt spends no use.
func TestAllowUseSharesTheRateAndSpendsNoUseWhenThrottled(t *testing.T) {
	for name, fleet := range fleets(t, Options{}) {
		ctx, sig, expires := context.Background(), signature(), time.Now().Add(time.Hour)
		limit := RequestLimit{PerSecond: 0.001, Burst: 3}
		l := fleet[len(fleet)-1]
		for i, want := range []int64{1, 0, 2} {
			if want == 0 {
				if d, err := fleet[0].Allow(ctx, "AK", limit); err != nil || !d.Allowed {
					t.Fatalf("%s: Allow within the burst: %+v, %v", name, d, err)
				}
				continue
			}
			rate, use, err := l.AllowUse(ctx, "AK", limit, sig, 10, expires)
			if err != nil || !rate.Allowed || !use.Allowed || use.Uses != want {
				t.Fatalf("%s: AllowUse %d within the burst: %+v %+v, %v", name, i, rate, use, err)
			}
		}
		rate, use, err := l.AllowUse(ctx, "AK", limit, sig, 10, expires)
		if err != nil || rate.Allowed || rate.RetryAfter < 900*time.Second || use != (Decision{}) {
			t.Errorf("%s: AllowUse over the rate: %+v %+v, %v; want throttled for ~1000 s, no use", name, rate, use, err)
		}
		if d, _ := fleet[0].Allow(ctx, "AK", limit); d.Allowed {
			t.Errorf("%s: Allow after AllowUse spent the burst: allowed", name)
		}
		if d, _ := l.UsePresigned(ctx, sig, 10, expires); d.Uses != 3 {
			t.Errorf("%s: the next use is number %d, want 3 (a throttled attempt spent one)", name, d.Uses)
		}
	}
}

// The exact count holds with the rate in the same script: 50 concurrent attempts on a 1-use URL
// over two proxies, one served.
func TestAllowUseExactUnderConcurrency(t *testing.T) {
	for name, fleet := range fleets(t, Options{}) {
		sig, expires := signature(), time.Now().Add(time.Hour)
		var served, throttled atomic.Int64
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rate, use, err := fleet[i%len(fleet)].AllowUse(context.Background(), "AK", RequestLimit{PerSecond: 1e6, Burst: 1e6}, sig, 1, expires)
				if err != nil {
					t.Error(err)
				}
				if !rate.Allowed {
					throttled.Add(1)
				}
				if use.Allowed {
					served.Add(1)
				}
			}()
		}
		wg.Wait()
		if served.Load() != 1 || throttled.Load() != 0 {
			t.Errorf("%s: %d served, %d throttled; want 1 and 0", name, served.Load(), throttled.Load())
		}
	}
}

// With Redis stopped, AllowUse decides as Allow then UsePresigned would: the rate's policy, then,
// if it allows, the uses'.
func TestAllowUseFollowsPolicies(t *testing.T) {
	srv := startRedis(t)
	ctx, expires := context.Background(), time.Now().Add(time.Hour)
	limit := RequestLimit{PerSecond: 1000, Burst: 1000}
	open := func(p Policies) *Limiter {
		return openLimiter(t, srv.url(), Options{Timeout: 100 * time.Millisecond, Policies: p})
	}
	defaults, closedRate, openUses := open(Policies{}), open(Policies{Requests: FailClosed}), open(Policies{Uses: FailOpen})
	srv.stop()
	for _, tc := range []struct {
		name      string
		l         *Limiter
		rate, use Decision
	}{
		{"defaults", defaults, Decision{Allowed: true, Fallback: FailOpen}, Decision{Fallback: FailClosed}},
		{"rate deny", closedRate, Decision{Fallback: FailClosed}, Decision{}},
		{"uses allow", openUses, Decision{Allowed: true, Fallback: FailOpen}, Decision{Allowed: true, Fallback: FailOpen}},
	} {
		rate, use, err := tc.l.AllowUse(ctx, "AK", limit, signature(), 1, expires)
		if err != nil || rate.Allowed != tc.rate.Allowed || rate.Fallback != tc.rate.Fallback ||
			use.Allowed != tc.use.Allowed || use.Fallback != tc.use.Fallback {
			t.Errorf("%s: %+v %+v, %v; want %+v %+v", tc.name, rate, use, err, tc.rate, tc.use)
		}
	}
}

// roundTrips counts the commands a Limiter sends to Redis.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// The round trips of the common requests on Redis: one for a request with a rate, one for a
// presigned request with a rate and a use limit, none for a small body's bandwidth until the
// key's small bodies make a batch.
func TestRoundTripsPerRequest(t *testing.T) {
	srv := startRedis(t)
	l := openLimiter(t, srv.url(), Options{})
	var trips roundTrips
	l.store.(*redisStore).client.AddHook(&trips)
	ctx, expires := context.Background(), time.Now().Add(time.Hour)
	limit := RequestLimit{PerSecond: 1e6, Burst: 1e6}
	body := func() { // 4 KiB under 1 MiB/s: a 64 KiB batch
		if _, err := io.ReadAll(l.Throttle(ctx, bytes.NewReader(make([]byte, 4<<10)), "AK/down", 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	count := func(what string, want int64, do func()) {
		t.Helper()
		before := trips.n.Load()
		do()
		if got := trips.n.Load() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", what, got, want)
		}
	}
	// Warm up: each script's first run sends EVALSHA, then EVAL.
	_, _, _ = l.AllowUse(ctx, "AK", limit, signature(), 1, expires)
	_, _ = l.Allow(ctx, "AK", limit)
	_ = l.waitBytes(ctx, l.keys.bandwidth("warm"), 1<<20, 64<<10, 1)

	count("Allow", 1, func() { _, _ = l.Allow(ctx, "AK", limit) })
	count("AllowUse", 1, func() { _, _, _ = l.AllowUse(ctx, "AK", limit, signature(), 1, expires) })
	count("15 bodies of 4 KiB", 0, func() {
		for range 15 {
			body()
		}
	})
	count("the 16th, which makes a batch", 1, body)
}

// A debt stays under a batch per key, a lowered limit's smaller batch is paid whole, and a full
// table owes nothing new.
func TestOwed(t *testing.T) {
	o := newOwed(1)
	for _, step := range []struct {
		key        string
		n, batch   int
		due, after int
	}{
		{"a", 3, 8, 0, 3},
		{"a", 4, 8, 0, 7},
		{"b", 2, 8, 2, 0}, // no room: paid at once
		{"a", 2, 8, 8, 1},
		{"a", 5, 2, 6, 0}, // the batch fell from 8 to 2: three batches due
		{"b", 2, 8, 0, 2}, // "a" owes nothing and left the table
	} {
		if due := o.add(step.key, step.n, step.batch); due != step.due || o.bytes[step.key] != step.after {
			t.Errorf("add(%s, %d, %d) = %d owing %d; want %d owing %d", step.key, step.n, step.batch, due, o.bytes[step.key], step.due, step.after)
		}
	}
}
