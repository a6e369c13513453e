package limits

import (
	"context"
	"sync/atomic"
	"time"
)

// Health is whether the store answers, for /readyz and a metric.
type Health struct {
	Store     string // the store's name, without secrets
	Shared    bool   // the store is shared by a fleet (Redis)
	Reachable bool
	// DownSince is when the store stopped answering (its first failure since it last
	// answered); zero while it answers.
	DownSince time.Time
	// Err is why the last ping failed.
	Err error
}

// Health pings the store now. Recovery needs nothing from the caller: the Redis client
// reconnects by itself, and the next answer marks the store up again.
func (l *Limiter) Health(ctx context.Context) Health {
	err := l.store.Ping(ctx)
	if err == nil {
		l.health.up()
	} else {
		l.health.down()
	}
	h := Health{Store: l.store.String(), Shared: l.store.Shared(), Reachable: err == nil, Err: err}
	if since := l.health.downSince.Load(); since != 0 && err != nil {
		h.DownSince = time.Unix(0, since)
	}
	return h
}

// health remembers since when the store fails, updated by every operation so that Health
// tells the time of the first failure, not of the last ping.
type health struct {
	downSince atomic.Int64 // unix nanoseconds; 0 while the store answers
}

func (h *health) up() {
	if h.downSince.Load() != 0 {
		h.downSince.Store(0)
	}
}

func (h *health) isDown() bool { return h.downSince.Load() != 0 }

func (h *health) down() {
	h.downSince.CompareAndSwap(0, time.Now().UnixNano())
}
