package limits

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestBoundedKeys(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	for _, plainKey := range []string{"AKIAIOSFODNN7EXAMPLE", sig, "AK/up", strings.Repeat("a", maxPlainKey)} {
		if got := bounded(plainKey); got != plainKey {
			t.Errorf("bounded(%q) = %q, want it kept", plainKey, got)
		}
	}
	for _, odd := range []string{strings.Repeat("a", maxPlainKey+1), "a:b", "a b", "a\nb", "h:" + sig, "é"} {
		got := bounded(odd)
		if !strings.HasPrefix(got, "h:") || len(got) != 2+64 || got == odd {
			t.Errorf("bounded(%q) = %q, want h: and a SHA-256", odd, got)
		}
	}
	if bounded("a:b") == bounded("a:c") {
		t.Error("two keys hashed alike")
	}
}

// Every key lives under the configured prefix (redis_rate adds its own "rate:" in front of
// the rate keys).
func TestRedisKeyLayout(t *testing.T) {
	srv := startRedis(t)
	l := openLimiter(t, srv.url(), Options{Prefix: "p1:"})
	ctx, sig := context.Background(), signature()
	if _, err := l.UsePresigned(ctx, sig, 1, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Allow(ctx, "AK", RequestLimit{PerSecond: 1, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	// A whole batch (a second's worth), so that it is paid rather than owed.
	if _, err := io.ReadAll(l.Throttle(ctx, strings.NewReader(strings.Repeat("b", 1000)), "AK/down", 1000)); err != nil {
		t.Fatal(err)
	}
	// The rate and a use in one script: the same keys as Allow's and UsePresigned's.
	sig2 := signature()
	if _, _, err := l.AllowUse(ctx, "AK", RequestLimit{PerSecond: 1, Burst: 2}, sig2, 1, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	keys, err := srv.client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"p1:use:" + sig: true, "p1:use:" + sig2: true, "rate:p1:req:AK": true, "rate:p1:bw:AK/down": true}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("missing keys %v (have %v)", want, keys)
	}
}

// redis_rate takes whole events per period; every rate keeps its time between two events.
func TestGCRALimit(t *testing.T) {
	for _, tc := range []struct {
		perSecond float64
		interval  time.Duration
	}{
		{10, 100 * time.Millisecond},
		{0.5, 2 * time.Second},
		{2.5, 400 * time.Millisecond},
		{1 << 40, 0}, // under a nanosecond
		{1e300, 0},
	} {
		l := gcra(tc.perSecond, 1)
		if l.Rate < 1 || l.Period <= 0 || l.Period/time.Duration(l.Rate) != tc.interval {
			t.Errorf("gcra(%g) = %+v, want %v between events", tc.perSecond, l, tc.interval)
		}
		if tc.perSecond >= 1<<20 && float64(l.Rate) != min(tc.perSecond, 1<<53) {
			t.Errorf("gcra(%g) = %+v, want the rate kept per second", tc.perSecond, l)
		}
	}
}
