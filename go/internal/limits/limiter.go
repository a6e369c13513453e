package limits

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Options configure a Limiter. The zero value is usable: memory store bounds, policies, timeout
// and prefix all have defaults.
type Options struct {
	// Policies say what each kind of limit answers when Redis does not.
	Policies Policies
	// Timeout bounds each Redis round trip; past it the failure policy decides. Default 250 ms.
	Timeout time.Duration
	// Prefix namespaces every key. Default "osp:".
	Prefix string
	// PasswordEnv names the environment variable that holds the Redis password when the URL
	// has none. Default "OSP_STATE_PASSWORD".
	PasswordEnv string
	// MemoryEntries bounds each of the in-memory store's tables (use counts, request limiters,
	// bandwidth limiters). Default 100000.
	MemoryEntries int
	// OnFallback, when set, hears every decision a failure policy made, for logs and metrics.
	OnFallback func(kind Kind, policy Policy, err error)
}

const (
	defaultTimeout       = 250 * time.Millisecond
	defaultPrefix        = "osp:"
	defaultPasswordEnv   = "OSP_STATE_PASSWORD"
	defaultMemoryEntries = 100_000
)

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	if o.PasswordEnv == "" {
		o.PasswordEnv = defaultPasswordEnv
	}
	if o.MemoryEntries <= 0 {
		o.MemoryEntries = defaultMemoryEntries
	}
	return o
}

// RequestLimit is a request rate: PerSecond on average, Burst at once.
type RequestLimit struct {
	PerSecond float64
	Burst     int
}

func (l RequestLimit) validate() error {
	if !(l.PerSecond > 0) || math.IsInf(l.PerSecond, 0) || l.Burst < 1 {
		return fmt.Errorf("limits: request limit %g/s burst %d: the rate must be positive and finite and the burst at least 1", l.PerSecond, l.Burst)
	}
	return nil
}

// Decision is a limit's answer.
type Decision struct {
	Allowed bool
	// RetryAfter is, for a refused request, when one will be allowed again.
	RetryAfter time.Duration
	// Uses is, for a presigned URL, its count of uses including this one (0 when unknown).
	Uses int64
	// Fallback is the failure policy that decided, or zero when the store answered.
	Fallback Policy
	// Err is why the store could not answer, when Fallback is set.
	Err error
}

// Limiter applies the limits on a Store, with the failure policies.
type Limiter struct {
	store  Store
	opts   Options
	keys   keyspace
	health *health // shared by the Limiters WithPolicies makes: one store, one health
	owed   *owed   // short bodies' unpaid bytes, on a shared store only; shared like health
}

// Open builds a Limiter on the store stateURL names: "" or "memory:" for this process's
// memory, redis://host:port/db or rediss://host:port/db (TLS) for Redis.
func Open(stateURL string, opts Options) (*Limiter, error) {
	opts = opts.withDefaults()
	store, err := openStore(stateURL, opts)
	if err != nil {
		return nil, err
	}
	return New(store, opts), nil
}

// New builds a Limiter on store.
func New(store Store, opts Options) *Limiter {
	opts = opts.withDefaults()
	l := &Limiter{store: store, opts: opts, keys: keyspace{prefix: opts.Prefix}, health: &health{}}
	if store.Shared() {
		// In process a charge costs less than keeping a debt would; on Redis it is a round trip.
		l.owed = newOwed(opts.MemoryEntries)
	}
	return l
}

// WithPolicies returns a Limiter on the same store (the same counts) with other failure
// policies: a reload may change the policies, and must not forget a spent URL by opening a
// new store.
func (l *Limiter) WithPolicies(p Policies) *Limiter {
	c := *l
	c.opts.Policies = p
	return &c
}

// String names the store, without secrets.
func (l *Limiter) String() string { return l.store.String() }

// Close releases the store.
func (l *Limiter) Close() error { return l.store.Close() }

// countGrace keeps a use count this long past its URL's expiry. Each proxy tells a URL's expiry
// by its own clock and Redis drops the count by its own: were one proxy's clock behind Redis',
// the count would go before that proxy stops accepting the URL, and the URL could be used again
// in between. Fifteen minutes is SigV4's own allowance for clock skew.
const countGrace = 15 * time.Minute

// UsePresigned counts a use of the presigned URL whose signature is given and allows it while
// the count is at most max. The count lives until the URL expires (and countGrace). A URL
// already past expires has no uses left.
func (l *Limiter) UsePresigned(ctx context.Context, signature string, max int, expires time.Time) (Decision, error) {
	if max < 1 {
		return Decision{}, fmt.Errorf("limits: presigned max uses %d: must be at least 1", max)
	}
	if !time.Now().Before(expires) {
		return Decision{}, nil
	}
	n, err := l.store.CountUse(ctx, l.keys.use(signature), expires.Add(countGrace))
	if err != nil {
		return l.fallback(ctx, Uses, err)
	}
	l.health.up()
	return Decision{Allowed: n <= int64(max), Uses: n}, nil
}

// Allow takes one request from key's budget under limit.
func (l *Limiter) Allow(ctx context.Context, key string, limit RequestLimit) (Decision, error) {
	if err := limit.validate(); err != nil {
		return Decision{}, err
	}
	allowed, retryAfter, err := l.store.AllowRequest(ctx, l.keys.requests(key), limit)
	if err != nil {
		return l.fallback(ctx, Requests, err)
	}
	l.health.up()
	return Decision{Allowed: allowed, RetryAfter: retryAfter}, nil
}

// AllowUse is Allow and then, only when the request is allowed, UsePresigned: for a presigned
// request under a rate limit and a use limit. On a store that can do both in one step (Redis:
// one script, one round trip) it does, atomically, so a throttled attempt spends no use there
// either. rate is Allow's decision and use UsePresigned's, zero when the request was not allowed.
func (l *Limiter) AllowUse(ctx context.Context, key string, limit RequestLimit, signature string, max int, expires time.Time) (rate, use Decision, err error) {
	if err := limit.validate(); err != nil {
		return rate, use, err
	}
	both, ok := l.store.(rateUseCounter)
	if !ok || max < 1 || !time.Now().Before(expires) {
		if rate, err = l.Allow(ctx, key, limit); err != nil || !rate.Allowed {
			return rate, use, err
		}
		use, err = l.UsePresigned(ctx, signature, max, expires)
		return rate, use, err
	}
	res, storeErr := both.AllowRequestCountUse(ctx, l.keys.requests(key), limit, l.keys.use(signature), expires.Add(countGrace))
	if storeErr != nil {
		// Neither was answered: the rate's policy decides first, as if asked alone.
		if rate, err = l.fallback(ctx, Requests, storeErr); err != nil || !rate.Allowed {
			return rate, use, err
		}
		use, err = l.fallback(ctx, Uses, storeErr)
		return rate, use, err
	}
	l.health.up()
	if !res.allowed {
		return Decision{RetryAfter: res.retryAfter}, use, nil
	}
	return Decision{Allowed: true}, Decision{Allowed: res.uses <= int64(max), Uses: res.uses}, nil
}

// Throttle returns r slowed to bytesPerSecond, shared by every stream with the same key (use
// one key per direction, e.g. the access key plus "/up" or "/down"). Both directions of a
// proxied request are readers (the client's body, the backend's answer), so a reader is all the
// proxy needs; a reader also sees its end, so every byte is charged. A Read ends early with
// ctx's error when ctx ends while waiting.
func (l *Limiter) Throttle(ctx context.Context, r io.Reader, key string, bytesPerSecond int64) io.Reader {
	if bytesPerSecond <= 0 {
		return r
	}
	return newThrottledReader(ctx, r, l, l.keys.bandwidth(key), bytesPerSecond)
}

// waitBytes is the throttled reader's way to the store, with the bandwidth failure policy.
func (l *Limiter) waitBytes(ctx context.Context, key string, bytesPerSecond int64, burst, n int) error {
	err := l.store.WaitBytes(ctx, key, bytesPerSecond, burst, n)
	if err == nil {
		l.health.up()
		return nil
	}
	d, err := l.fallback(ctx, Bandwidth, err)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return fmt.Errorf("limits: bandwidth fails closed: %w", d.Err)
	}
	return nil
}

// payShort pays for a whole body shorter than a batch. On a shared store the bytes are owed
// (owed.go) and paid, a batch at a time, by the body that brings the key's debt to a batch; while
// the store is known to be down they are paid at once, so that the bandwidth policy decides
// every transfer as it would without a debt.
func (l *Limiter) payShort(ctx context.Context, key string, bytesPerSecond int64, batch, n int) error {
	due := n
	if l.owed != nil && !l.health.isDown() {
		due = l.owed.add(key, n, batch)
	}
	for ; due > 0; due -= batch {
		if err := l.waitBytes(ctx, key, bytesPerSecond, batch, min(due, batch)); err != nil {
			return err
		}
	}
	return nil
}

// fallback turns a store failure into the kind's policy decision. The caller's own cancellation
// is not a store failure: it is returned as the error.
func (l *Limiter) fallback(ctx context.Context, kind Kind, err error) (Decision, error) {
	if ctx.Err() != nil {
		return Decision{}, ctx.Err()
	}
	policy := FailClosed
	if !errors.Is(err, ErrFull) {
		l.health.down()
		policy = l.opts.Policies.of(kind)
	}
	if l.opts.OnFallback != nil {
		l.opts.OnFallback(kind, policy, err)
	}
	return Decision{Allowed: policy == FailOpen, Fallback: policy, Err: err}, nil
}
