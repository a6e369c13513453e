package limits

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// The benchmarks measure each limit's cost per request: a presigned use, a request under a
// generous rate, both at once, a 4 KiB body through a generous bandwidth limit. Run with
// go test -run '^$' -bench . -benchmem ./internal/limits/
func benchStores(b *testing.B) map[string]*Limiter {
	srv := startRedis(b)
	return map[string]*Limiter{"memory": openLimiter(b, "", Options{}), "redis": openLimiter(b, srv.url(), Options{})}
}

func BenchmarkUsePresigned(b *testing.B) {
	sigs := make([]string, 4096)
	for i := range sigs {
		sigs[i] = signature()
	}
	expires := time.Now().Add(time.Hour)
	for name, l := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				if _, err := l.UsePresigned(ctx, sigs[i%len(sigs)], 1<<30, expires); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	limit := RequestLimit{PerSecond: 1e9, Burst: 1e9}
	for name, l := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if d, err := l.Allow(ctx, "AKIAIOSFODNN7EXAMPLE", limit); err != nil || !d.Allowed {
					b.Fatal(d, err)
				}
			}
		})
	}
}

func BenchmarkAllowUse(b *testing.B) {
	sigs := make([]string, 4096)
	for i := range sigs {
		sigs[i] = signature()
	}
	limit, expires := RequestLimit{PerSecond: 1e9, Burst: 1e9}, time.Now().Add(time.Hour)
	for name, l := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				if rate, use, err := l.AllowUse(ctx, "AKIAIOSFODNN7EXAMPLE", limit, sigs[i%len(sigs)], 1<<30, expires); err != nil || !rate.Allowed || !use.Allowed {
					b.Fatal(rate, use, err)
				}
			}
		})
	}
}

func BenchmarkThrottle4KiB(b *testing.B) {
	body := make([]byte, 4<<10)
	buf := make([]byte, 32<<10)
	for name, l := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			ctx := context.Background()
			for b.Loop() {
				r := l.Throttle(ctx, bytes.NewReader(body), "AKIAIOSFODNN7EXAMPLE/down", 1<<40)
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
