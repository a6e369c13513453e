package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/object-storage-proxy/osp/internal/s3op"
)

// AccessCache holds a host callable's answers about accesses (the
// validator's, bucket_creds_fetcher's), each for its bucket's TTL: per
// (token, bucket), or per whole access (token, bucket, method, operation,
// key) for a callable that looks at method, key and operation. Answers are
// never shared between tokens.
type AccessCache[V any] struct {
	answers  *Cache[accessKey, V]
	identity bool
}

// accessKey carries the bucket's TTL so the loader knows how long to keep
// the answer; a bucket's TTL is fixed, so it does not split entries.
type accessKey struct {
	access s3op.Access
	ttl    time.Duration
}

// NewAccessCache puts a cache of at most size answers in front of ask,
// the callable name; identity says whether ask looks at method, key and
// operation. An answer is kept for its bucket's TTL, a failure not at all.
func NewAccessCache[V any](name string, size int, identity bool, ask func(context.Context, s3op.Access) (V, error)) *AccessCache[V] {
	load := func(ctx context.Context, k accessKey) (V, time.Duration, error) {
		v, err := ask(ctx, k.access)
		if err != nil {
			return v, 0, fmt.Errorf("%s: %w", name, err)
		}
		return v, k.ttl, nil
	}
	return &AccessCache[V]{answers: New(size, func(k accessKey) string { return KeyOf(k.access) }, load), identity: identity}
}

// Get returns the answer about access, asking the callable on a miss; ttl
// is the bucket's.
func (c *AccessCache[V]) Get(ctx context.Context, access s3op.Access, ttl time.Duration) (V, error) {
	if !c.identity {
		access = access.BucketOnly()
	}
	return c.answers.Get(ctx, accessKey{access, ttl})
}

// Identity reports whether the callable decides per whole access.
func (c *AccessCache[V]) Identity() bool { return c.identity }

// Observe makes fn see every lookup's result (for metrics). A nil
// AccessCache (no callable) has no lookups to see.
func (c *AccessCache[V]) Observe(fn func(hit bool)) {
	if c != nil {
		c.answers.Observe(fn)
	}
}
