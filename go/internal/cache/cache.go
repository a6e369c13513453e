// Package cache holds answers from slow sources (Python callables, IAM)
// for a time to live, bounded in size, and collapses concurrent misses for
// one key into a single call.
package cache

import (
	"context"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Loader fetches the value for a key on a miss. It also reports how long
// the answer may be kept; zero means not at all.
type Loader[K comparable, V any] func(ctx context.Context, key K) (V, time.Duration, error)

// Cache is a bounded LRU in front of a Loader whose entries expire each
// after its own TTL: buckets have different TTLs, so one cache-wide TTL
// (golang-lru's expirable LRU) would not do.
type Cache[K comparable, V any] struct {
	load      Loader[K, V]
	entries   *lru.Cache[K, entry[V]]
	group     singleflight.Group
	keyString func(K) string // singleflight key; must be injective
	now       func() time.Time
	observe   func(hit bool)
}

type entry[V any] struct {
	value   V
	expires time.Time
}

// New returns a cache of at most maxSize entries.
func New[K comparable, V any](maxSize int, keyString func(K) string, load Loader[K, V]) *Cache[K, V] {
	entries, err := lru.New[K, entry[V]](max(maxSize, 1))
	if err != nil { // only for a size <= 0, excluded above
		panic(err)
	}
	return &Cache[K, V]{load: load, entries: entries, keyString: keyString, now: time.Now}
}

// Get returns the cached value for key or loads it. Concurrent Gets of a
// missing key share one load.
func (c *Cache[K, V]) Get(ctx context.Context, key K) (V, error) {
	v, ok := c.lookup(key)
	if c.observe != nil {
		c.observe(ok)
	}
	if ok {
		return v, nil
	}
	res, err, _ := c.group.Do(c.keyString(key), func() (any, error) {
		// A caller that lost the race may find the winner's answer.
		if v, ok := c.lookup(key); ok {
			return v, nil
		}
		v, ttl, err := c.load(ctx, key)
		if err != nil {
			return v, err
		}
		if ttl > 0 {
			c.entries.Add(key, entry[V]{value: v, expires: c.now().Add(ttl)})
		}
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, fmt.Errorf("load: %w", err)
	}
	return res.(V), nil
}

func (c *Cache[K, V]) lookup(key K) (V, bool) {
	e, ok := c.entries.Get(key)
	if ok && c.now().Before(e.expires) {
		return e.value, true
	}
	if ok {
		c.entries.Remove(key)
	}
	var zero V
	return zero, false
}

// Observe makes fn see every lookup's result (for metrics). Call it before
// the cache is used.
func (c *Cache[K, V]) Observe(fn func(hit bool)) { c.observe = fn }

// KeyOf is an injective string form of a comparable struct of strings,
// for singleflight keys.
func KeyOf(v any) string { return fmt.Sprintf("%q", v) }

// Len reports the number of entries held, expired or not.
func (c *Cache[K, V]) Len() int { return c.entries.Len() }
