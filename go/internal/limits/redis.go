package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// redisStore keeps the counts in Redis, so that every proxy of a fleet sees the same ones. Each
// operation is one round trip (a Lua script), bounded by the timeout; the client reconnects by
// itself when Redis comes back.
type redisStore struct {
	client  *redis.Client
	rates   *redis_rate.Limiter
	gcra    gcraScript
	rateUse *redis.Script // redis_rate's GCRA, then a use count (allowRequestCountUse)
	timeout time.Duration
	name    string // scheme, host and database: never the password
}

// openStore builds the store stateURL names.
func openStore(stateURL string, opts Options) (Store, error) {
	if stateURL == "" || stateURL == "memory:" {
		return newMemoryStore(opts.MemoryEntries)
	}
	return openRedis(stateURL, opts)
}

func openRedis(stateURL string, opts Options) (*redisStore, error) {
	u, err := url.Parse(stateURL)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included: say only what is wrong.
		return nil, errors.New("limits: state_url is not a valid URL (want memory:, redis://host:port/db or rediss://host:port/db)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("limits: state_url scheme %q: want memory:, redis:// or rediss://", u.Scheme)
	}
	name := u.Scheme + "://" + u.Host + u.Path
	ro, err := redis.ParseURL(stateURL)
	if err != nil {
		return nil, fmt.Errorf("limits: state_url %s: %w", name, err)
	}
	if ro.Password == "" {
		ro.Password = os.Getenv(opts.PasswordEnv)
	}
	ro.DialTimeout = opts.Timeout
	ro.ReadTimeout = opts.Timeout
	ro.WriteTimeout = opts.Timeout
	ro.PoolTimeout = opts.Timeout
	ro.ContextTimeoutEnabled = true
	ro.DialerRetries = 1 // a refused dial is an answer: let the policy decide, not a retry loop
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	gcra, err := catchGCRA()
	if err != nil {
		return nil, err
	}
	client := redis.NewClient(ro)
	return &redisStore{client: client, rates: redis_rate.NewLimiter(client), gcra: gcra, rateUse: allowRequestCountUse(gcra),
		timeout: opts.Timeout, name: name}, nil
}

// countUse counts one use of a presigned URL. INCR and PEXPIREAT run in one script, so they
// are one round trip and atomic: no other proxy's INCR comes between them, and the counter
// never exists without its expiry (two separate commands could leave, after a crash between
// them, a counter that lives forever). The expiry is set on the first use only; every use of
// one URL carries the same expiry anyway.
//
// KEYS[1] is the counter, ARGV[1] the URL's expiry in Unix milliseconds.
var countUse = redis.NewScript(countUseLua("KEYS[1]", "ARGV[1]") + "return n\n")

// countUseLua counts a use of the counter key, expiring at expires, into the local n.
func countUseLua(key, expires string) string {
	return "local n = redis.call('INCR', " + key + ")\n" +
		"if n == 1 then\n" +
		"  redis.call('PEXPIREAT', " + key + ", " + expires + ")\n" +
		"end\n"
}

// allowRequestCountUse takes a request with redis_rate's GCRA and, only when it is allowed,
// counts a use: one round trip for a presigned request with a rate and a use limit, and, being
// one script, atomic, so a throttled attempt spends no use and the count stays exact across
// proxies. The GCRA runs as a Lua function so that its returns end it, not the script.
//
// KEYS[1] and ARGV[1..4] are the GCRA's (gcraScript), KEYS[2] the use counter and ARGV[5] its
// expiry in Unix milliseconds. The answer is {0, retry_after seconds} when throttled, else
// {1, the use count}. The two keys must live on one Redis (no cluster: openRedis makes a
// single-node client).
func allowRequestCountUse(gcra gcraScript) *redis.Script {
	return redis.NewScript("local function gcra()\n" + gcra.src + "\nend\n" +
		"local rate = gcra()\n" +
		"if rate[1] == 0 then\n" +
		"  return {0, rate[3]}\n" +
		"end\n" +
		countUseLua("KEYS[2]", "ARGV[5]") +
		"return {1, n}\n")
}

func (s *redisStore) CountUse(ctx context.Context, key string, expires time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := countUse.Run(ctx, s.client, []string{key}, expires.UnixMilli()).Int64()
	if err != nil {
		return 0, fmt.Errorf("limits: counting a presigned URL's use on %s: %w", s.name, err)
	}
	return n, nil
}

// AllowRequest runs redis_rate's GCRA script: one round trip, Redis' own clock, one key per
// client key holding its theoretical arrival time and expiring once the key is idle.
func (s *redisStore) AllowRequest(ctx context.Context, key string, limit RequestLimit) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.rates.Allow(ctx, key, gcra(limit.PerSecond, limit.Burst))
	if err != nil {
		return false, 0, fmt.Errorf("limits: request rate on %s: %w", s.name, err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, res.RetryAfter, nil
}

// AllowRequestCountUse is AllowRequest and, when the request is allowed, CountUse, in one round
// trip (allowRequestCountUse).
func (s *redisStore) AllowRequestCountUse(ctx context.Context, key string, limit RequestLimit, useKey string, expires time.Time) (rateUse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := append(s.gcra.args(gcra(limit.PerSecond, limit.Burst), 1), expires.UnixMilli())
	v, err := s.rateUse.Run(ctx, s.client, []string{s.gcra.keyPrefix + key, useKey}, args...).Slice()
	if err == nil && len(v) != 2 {
		err = fmt.Errorf("unexpected answer %v", v)
	}
	if err != nil {
		return rateUse{}, fmt.Errorf("limits: request rate and presigned use on %s: %w", s.name, err)
	}
	if allowed, _ := v[0].(int64); allowed == 1 {
		uses, _ := v[1].(int64)
		return rateUse{allowed: true, uses: uses}, nil
	}
	retry, _ := v[1].(string)
	seconds, err := strconv.ParseFloat(retry, 64)
	if err != nil {
		return rateUse{}, fmt.Errorf("limits: request rate on %s: retry after %q: %w", s.name, retry, err)
	}
	return rateUse{retryAfter: time.Duration(seconds * float64(time.Second))}, nil
}

// WaitBytes takes n byte tokens in one round trip when they are there. When they are not,
// GCRA says when they will be; it sleeps that long and asks again, so a throttled batch costs
// a second round trip, made while the stream would be waiting anyway.
func (s *redisStore) WaitBytes(ctx context.Context, key string, bytesPerSecond int64, burst, n int) error {
	limit := gcra(float64(bytesPerSecond), burst)
	for {
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		res, err := s.rates.AllowN(rctx, key, limit, n)
		cancel()
		if err != nil {
			return fmt.Errorf("limits: bandwidth on %s: %w", s.name, err)
		}
		if res.Allowed > 0 {
			return nil
		}
		if err := sleep(ctx, res.RetryAfter); err != nil {
			return err
		}
	}
}

// gcra expresses a rate per second as redis_rate's integer events per period. GCRA only uses
// period/rate (the time between two events), so a fractional rate becomes one event per
// 1/perSecond seconds; above a million a second a fraction no longer matters and the rate is
// rounded instead (one event per under a microsecond would lose more to Duration's rounding).
// 2^53 keeps the integer exact in Lua's doubles.
func gcra(perSecond float64, burst int) redis_rate.Limit {
	if perSecond == math.Trunc(perSecond) || perSecond >= 1<<20 {
		return redis_rate.Limit{Rate: int(math.Round(min(perSecond, 1<<53))), Burst: burst, Period: time.Second}
	}
	return redis_rate.Limit{Rate: 1, Burst: burst, Period: time.Duration(float64(time.Second) / perSecond)}
}

func (s *redisStore) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("limits: ping %s: %w", s.name, err)
	}
	return nil
}

func (s *redisStore) Shared() bool   { return true }
func (s *redisStore) String() string { return s.name }
func (s *redisStore) Close() error   { return s.client.Close() }
