package limits

import (
	"context"
	"errors"
	"time"
)

// Store keeps the counts. Keys arrive namespaced and bounded (see keys.go); a Store only counts.
// Errors mean the store could not answer; the Limiter turns them into a policy decision.
type Store interface {
	// CountUse counts one use of key and returns the count including this one. The count is
	// forgotten at expires.
	CountUse(ctx context.Context, key string, expires time.Time) (int64, error)
	// AllowRequest takes one request from key's budget, or says how long until one is free.
	AllowRequest(ctx context.Context, key string, limit RequestLimit) (allowed bool, retryAfter time.Duration, err error)
	// WaitBytes blocks until n bytes may pass under bytesPerSecond (with a burst of burst bytes,
	// n <= burst), or ctx ends.
	WaitBytes(ctx context.Context, key string, bytesPerSecond int64, burst, n int) error
	// Ping reports whether the store answers now.
	Ping(ctx context.Context) error
	// Shared reports whether other processes see the same counts.
	Shared() bool
	// String names the store for logs, without secrets.
	String() string
	Close() error
}

// rateUseCounter is a Store that can take a request and count a presigned use in one step.
type rateUseCounter interface {
	// AllowRequestCountUse is AllowRequest and, only when the request is allowed, CountUse
	// of useKey, as one atomic step.
	AllowRequestCountUse(ctx context.Context, key string, limit RequestLimit, useKey string, expires time.Time) (rateUse, error)
}

// rateUse is AllowRequestCountUse's answer.
type rateUse struct {
	allowed    bool
	retryAfter time.Duration // when refused
	uses       int64         // when allowed: the use count including this one
}

// ErrFull is the in-memory store's answer when every slot holds a count that has not expired:
// forgetting one would let its URL be used again, so the use is refused instead.
var ErrFull = errors.New("limits: in-memory store is full of unexpired presigned-URL counts")
