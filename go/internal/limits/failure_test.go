package limits

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

type fallbacks struct {
	mu   sync.Mutex
	seen map[Kind]Policy
}

func (f *fallbacks) record(kind Kind, policy Policy, _ error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[Kind]Policy{}
	}
	f.seen[kind] = policy
}

// With Redis stopped each kind of limit follows its policy (defaults, then the reverse), says
// so in the Decision and to OnFallback, Health tells since when, and all comes back by itself
// when Redis does.
func TestRedisStoppedFollowsPolicies(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	var heard fallbacks
	defaults := openLimiter(t, srv.url(), Options{Timeout: 100 * time.Millisecond, OnFallback: heard.record})
	reversed := openLimiter(t, srv.url(), Options{Timeout: 100 * time.Millisecond,
		Policies: Policies{Uses: FailOpen, Requests: FailClosed, Bandwidth: FailClosed}})
	expires := time.Now().Add(time.Hour)
	limit := RequestLimit{PerSecond: 1000, Burst: 1000}
	for _, l := range []*Limiter{defaults, reversed} {
		if d, err := l.UsePresigned(ctx, signature(), 1, expires); err != nil || !d.Allowed || d.Fallback != 0 {
			t.Fatalf("with Redis up: %+v, %v", d, err)
		}
	}

	srv.stop()
	stoppedAt := time.Now()

	d, err := defaults.UsePresigned(ctx, signature(), 1, expires)
	if err != nil || d.Allowed || d.Fallback != FailClosed || d.Err == nil {
		t.Errorf("uses, default policy: %+v, %v; want refused by FailClosed", d, err)
	}
	d, err = defaults.Allow(ctx, "AK", limit)
	if err != nil || !d.Allowed || d.Fallback != FailOpen {
		t.Errorf("requests, default policy: %+v, %v; want allowed by FailOpen", d, err)
	}
	body := bytes.Repeat([]byte("x"), 300<<10)
	if got, err := io.ReadAll(defaults.Throttle(ctx, bytes.NewReader(body), "AK/up", 1<<20)); err != nil || len(got) != len(body) {
		t.Errorf("bandwidth, default policy: read %d bytes, %v; want all of them", len(got), err)
	}
	heard.mu.Lock()
	if want := (map[Kind]Policy{Uses: FailClosed, Requests: FailOpen, Bandwidth: FailOpen}); len(heard.seen) != 3 ||
		heard.seen[Uses] != want[Uses] || heard.seen[Requests] != want[Requests] || heard.seen[Bandwidth] != want[Bandwidth] {
		t.Errorf("OnFallback heard %v, want %v", heard.seen, want)
	}
	heard.mu.Unlock()

	if d, err := reversed.UsePresigned(ctx, signature(), 1, expires); err != nil || !d.Allowed || d.Fallback != FailOpen {
		t.Errorf("uses, FailOpen: %+v, %v", d, err)
	}
	if d, err := reversed.Allow(ctx, "AK", limit); err != nil || d.Allowed || d.Fallback != FailClosed {
		t.Errorf("requests, FailClosed: %+v, %v", d, err)
	}
	if _, err := io.ReadAll(reversed.Throttle(ctx, bytes.NewReader(body), "AK/up", 1<<20)); err == nil {
		t.Error("bandwidth, FailClosed: the transfer went through")
	}

	h := defaults.Health(ctx)
	if h.Reachable || !h.Shared || h.Err == nil || h.DownSince.Before(stoppedAt) || h.DownSince.After(time.Now()) {
		t.Errorf("health with Redis stopped: %+v", h)
	}

	srv.start()
	restarted := time.Now()
	deadline := restarted.Add(5 * time.Second)
	for !defaults.Health(ctx).Reachable && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("reachable again %v after redis-server answered", time.Since(restarted))
	if h := defaults.Health(ctx); !h.Reachable || !h.DownSince.IsZero() || h.Err != nil {
		t.Fatalf("health after Redis came back: %+v", h)
	}
	if d, err := defaults.UsePresigned(ctx, signature(), 1, expires); err != nil || !d.Allowed || d.Fallback != 0 {
		t.Errorf("uses after Redis came back: %+v, %v", d, err)
	}
	if d, err := reversed.Allow(ctx, "AK", limit); err != nil || !d.Allowed || d.Fallback != 0 {
		t.Errorf("requests after Redis came back: %+v, %v", d, err)
	}
}

// A Redis that accepts connections but never answers costs a request the timeout, not more.
func TestSilentRedisTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	l := openLimiter(t, "redis://"+ln.Addr().String()+"/0", Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	d, err := l.UsePresigned(context.Background(), signature(), 1, time.Now().Add(time.Hour))
	if took := time.Since(start); err != nil || d.Allowed || d.Fallback != FailClosed || took > 400*time.Millisecond {
		t.Errorf("silent Redis: %+v, %v after %v", d, err, took)
	}
}

// The caller's own cancellation is not a store failure: it is returned, not decided by policy.
func TestCallerCancellationIsNotAFailure(t *testing.T) {
	srv := startRedis(t)
	l := openLimiter(t, srv.url(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.UsePresigned(ctx, signature(), 1, time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled UsePresigned: %v", err)
	}
	if h := l.Health(context.Background()); !h.Reachable || !h.DownSince.IsZero() {
		t.Errorf("a cancelled call marked the store down: %+v", h)
	}
}

// Without persistence a restart loses every count: a spent 1-use URL can be used once more.
// With appendonly and appendfsync always (the production setup docs/limits.md recommends) each
// count is on disk before the proxy hears it, and a restart keeps it.
func TestRedisRestart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        []string
		usableAgain bool
	}{
		{"no persistence", nil, true},
		{"appendfsync always", []string{"--appendonly", "yes", "--appendfsync", "always"}, false},
	} {
		srv := startRedis(t, tc.args...)
		l := openLimiter(t, srv.url(), Options{})
		ctx, sig, expires := context.Background(), signature(), time.Now().Add(time.Hour)
		if d, _ := l.UsePresigned(ctx, sig, 1, expires); !d.Allowed {
			t.Fatalf("%s: first use refused: %+v", tc.name, d)
		}
		srv.restart()
		var d Decision
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if d, _ = l.UsePresigned(ctx, sig, 1, expires); d.Fallback == 0 {
				break
			}
		}
		if d.Fallback != 0 || d.Allowed != tc.usableAgain {
			t.Errorf("%s: use after restart: %+v, want allowed=%v", tc.name, d, tc.usableAgain)
		}
	}
}
