package limits

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func signature() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// A presigned URL allowed max uses is served exactly max times under 50 concurrent attempts,
// even when the attempts are spread over two proxies sharing Redis.
func TestUsesExactUnderConcurrency(t *testing.T) {
	for name, fleet := range fleets(t, Options{}) {
		for _, max := range []int{1, 5} {
			sig, expires := signature(), time.Now().Add(time.Hour)
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d, err := fleet[i%len(fleet)].UsePresigned(context.Background(), sig, max, expires)
					if err != nil || d.Fallback != 0 {
						t.Errorf("%s: UsePresigned: %+v, %v", name, d, err)
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}()
			}
			wg.Wait()
			if got := allowed.Load(); got != int64(max) {
				t.Errorf("%s: max %d: %d of 50 uses allowed", name, max, got)
			}
		}
	}
}

func TestUsesPastExpiryAndBadMax(t *testing.T) {
	l := openLimiter(t, "", Options{})
	if d, err := l.UsePresigned(context.Background(), signature(), 1, time.Now().Add(-time.Second)); err != nil || d.Allowed {
		t.Errorf("expired URL: %+v, %v", d, err)
	}
	if _, err := l.UsePresigned(context.Background(), signature(), 0, time.Now().Add(time.Hour)); err == nil {
		t.Error("max 0 accepted")
	}
}

// The Redis counter carries the URL's expiry (plus countGrace), so the store cannot grow
// without bound.
func TestRedisUseCountExpiresWithURL(t *testing.T) {
	srv := startRedis(t)
	l := openLimiter(t, srv.url(), Options{Prefix: "test:"})
	sig, expires := signature(), time.Now().Add(time.Minute)
	if d, err := l.UsePresigned(context.Background(), sig, 1, expires); err != nil || !d.Allowed || d.Uses != 1 {
		t.Fatalf("first use: %+v, %v", d, err)
	}
	ttl, err := srv.client().PTTL(context.Background(), "test:use:"+sig).Result()
	if want := time.Minute + countGrace; err != nil || ttl <= want-5*time.Second || ttl > want {
		t.Errorf("PTTL of the use count: %v, %v; want about %v", ttl, err, want)
	}
}

// A 10 req/s limit holds within 10% over 3 s, across two proxies sharing Redis.
func TestRequestRateHolds(t *testing.T) {
	limit := RequestLimit{PerSecond: 10, Burst: 2}
	for name, fleet := range fleets(t, Options{}) {
		key := "AKIA" + name
		var allowed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		stop := start.Add(3 * time.Second)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					d, err := fleet[i%len(fleet)].Allow(context.Background(), key, limit)
					if err != nil || d.Fallback != 0 {
						t.Errorf("%s: Allow: %+v, %v", name, d, err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					} else if d.RetryAfter <= 0 || d.RetryAfter > time.Second/10 {
						t.Errorf("%s: refused with RetryAfter %v", name, d.RetryAfter)
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		want := float64(limit.Burst) + limit.PerSecond*time.Since(start).Seconds()
		if got := float64(allowed.Load()); got < 0.9*want || got > 1.1*want {
			t.Errorf("%s: %v requests allowed, want %.1f ± 10%%", name, got, want)
		}
	}
}

func TestRequestLimitValidated(t *testing.T) {
	l := openLimiter(t, "", Options{})
	for _, bad := range []RequestLimit{{0, 1}, {-1, 1}, {1, 0}} {
		if _, err := l.Allow(context.Background(), "k", bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A fractional rate keeps its meaning on Redis (redis_rate counts whole events per period).
func TestFractionalRateOnRedis(t *testing.T) {
	srv := startRedis(t)
	l := openLimiter(t, srv.url(), Options{})
	limit := RequestLimit{PerSecond: 0.5, Burst: 1}
	if d, _ := l.Allow(context.Background(), "k", limit); !d.Allowed {
		t.Fatal("first request refused")
	}
	d, _ := l.Allow(context.Background(), "k", limit)
	if d.Allowed || d.RetryAfter < 1900*time.Millisecond || d.RetryAfter > 2*time.Second {
		t.Errorf("second request: %+v; want refused for about 2 s", d)
	}
}

// Bandwidth slows a transfer to the limit, shared by every stream of the key (on Redis, across
// two proxies), and passes every byte unchanged.
func TestThrottleSlowsToTheLimit(t *testing.T) {
	const bps = 256 << 10
	for name, fleet := range fleets(t, Options{}) {
		body := make([]byte, 160<<10)
		_, _ = rand.Read(body)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := fleet[i%len(fleet)].Throttle(context.Background(), bytes.NewReader(body), "AK/down", bps)
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, body) {
					t.Errorf("%s: read %d bytes, %v", name, len(got), err)
				}
			}()
		}
		wg.Wait()
		// 320 KiB at 256 KiB/s with a 64 KiB burst: 1 s.
		if took := time.Since(start); took < 900*time.Millisecond || took > 1500*time.Millisecond {
			t.Errorf("%s: two 160 KiB reads at 256 KiB/s took %v, want about 1 s", name, took)
		}
	}
}

func TestThrottleHonoursCancellation(t *testing.T) {
	for name, fleet := range fleets(t, Options{}) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		r := fleet[0].Throttle(ctx, bytes.NewReader(make([]byte, 1<<20)), "AK/up", 64<<10)
		start := time.Now()
		_, err := io.Copy(io.Discard, r)
		cancel()
		if err == nil || time.Since(start) > time.Second {
			t.Errorf("%s: copy under a cancelled context: %v after %v", name, err, time.Since(start))
		}
	}
}

func TestThrottleOffPassesReaderThrough(t *testing.T) {
	l := openLimiter(t, "", Options{})
	r := bytes.NewReader(nil)
	if l.Throttle(context.Background(), r, "k", 0) != io.Reader(r) {
		t.Error("a zero limit wrapped the reader")
	}
}

// A body shorter than a batch is charged too: at once in process, and on Redis by the body that
// brings the key's debt in its proxy to a batch; either way the next stream of the key, on any
// proxy, waits for it.
func TestThrottleChargesShortBodies(t *testing.T) {
	for name, fleet := range fleets(t, Options{}) {
		const bps = 8 << 10 // batch and burst: 8 KiB
		ctx := context.Background()
		for range 2 {
			if _, err := io.ReadAll(fleet[0].Throttle(ctx, bytes.NewReader(make([]byte, 4<<10)), "AK/down", bps)); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		if _, err := io.ReadAll(fleet[len(fleet)-1].Throttle(ctx, bytes.NewReader(make([]byte, 8<<10)), "AK/down", bps)); err != nil {
			t.Fatal(err)
		}
		// The two 4 KiB bodies took the 8 KiB burst: the next 8 KiB wait a second.
		if took := time.Since(start); took < 900*time.Millisecond || took > 1400*time.Millisecond {
			t.Errorf("%s: 8 KiB after two 4 KiB bodies took %v, want about 1 s", name, took)
		}
	}
}

// The bound of a debt: on Redis a proxy owes at most one batch less a byte per key, so the key
// runs ahead of its budget by that much per proxy; the body that completes the batch pays it.
func TestShortBodiesOweLessThanABatch(t *testing.T) {
	fleet := fleets(t, Options{})["redis"]
	const bps = 8 << 10
	ctx := context.Background()
	read := func(l *Limiter, n int) time.Duration {
		start := time.Now()
		if _, err := io.ReadAll(l.Throttle(ctx, bytes.NewReader(make([]byte, n)), "AK/down", bps)); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	read(fleet[0], 4<<10)
	read(fleet[0], 4<<10-1) // owed: 8 KiB less a byte
	if took := read(fleet[1], 8<<10); took > 200*time.Millisecond {
		t.Fatalf("the other proxy's 8 KiB waited %v: the owed bytes were charged", took)
	}
	read(fleet[0], 1) // the debt makes a batch: paid, after the second's wait for it
	if took := read(fleet[1], 8<<10); took < 900*time.Millisecond {
		t.Errorf("the other proxy's next 8 KiB took %v, want about 1 s: the debt was not paid", took)
	}
}
