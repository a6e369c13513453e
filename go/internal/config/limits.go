package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"time"
)

// Failure policies of the limits while the state store does not answer.
const (
	StateDownDeny  = "deny"
	StateDownAllow = "allow"
)

// MaxPresignExpires is S3's own longest presigned URL: 7 days.
const MaxPresignExpires = 7 * 24 * time.Hour

// maxLimit bounds every count and rate of a limit, far inside what the
// limiters (and Lua's doubles, on Redis) hold exactly.
const maxLimit = 1 << 40

// RateLimit is one client key's limit: requests per second with a burst,
// and bytes per second each way. A zero field is no limit of that kind.
type RateLimit struct {
	RequestsPerSecond      float64 `json:"requests_per_second"`
	Burst                  int     `json:"burst"`
	UploadBytesPerSecond   int64   `json:"upload_bytes_per_second"`
	DownloadBytesPerSecond int64   `json:"download_bytes_per_second"`
}

// Normalize checks the limit and gives a request rate without a burst the
// burst of one second's requests (at least 1).
func (l *RateLimit) Normalize() error {
	switch {
	case math.IsNaN(l.RequestsPerSecond) || l.RequestsPerSecond < 0 || l.RequestsPerSecond > maxLimit:
		return fmt.Errorf("requests_per_second %g is out of range (0-%d)", l.RequestsPerSecond, int64(maxLimit))
	case l.Burst < 0 || l.Burst > maxLimit:
		return fmt.Errorf("burst %d is out of range (0-%d)", l.Burst, int64(maxLimit))
	case l.Burst > 0 && l.RequestsPerSecond == 0:
		return errors.New("burst is given without requests_per_second")
	case l.UploadBytesPerSecond < 0 || l.UploadBytesPerSecond > maxLimit:
		return fmt.Errorf("upload_bytes_per_second %d is out of range (0-%d)", l.UploadBytesPerSecond, int64(maxLimit))
	case l.DownloadBytesPerSecond < 0 || l.DownloadBytesPerSecond > maxLimit:
		return fmt.Errorf("download_bytes_per_second %d is out of range (0-%d)", l.DownloadBytesPerSecond, int64(maxLimit))
	}
	if l.RequestsPerSecond > 0 && l.Burst == 0 {
		l.Burst = int(max(1, math.Ceil(l.RequestsPerSecond)))
	}
	return nil
}

// PresignLimits are a bucket's presigned-URL limits: its own, else the
// server's. MaxUses 0 is no limit; MaxExpires is at most 7 days.
func (c *Config) PresignLimits(b *Bucket) (maxUses int, maxExpires time.Duration) {
	maxUses, seconds := c.PresignMaxUses, c.PresignMaxExpires
	if b.PresignMaxUses != nil {
		maxUses = *b.PresignMaxUses
	}
	if b.PresignMaxExpires != nil {
		seconds = *b.PresignMaxExpires
	}
	if seconds == 0 {
		return maxUses, MaxPresignExpires
	}
	return maxUses, time.Duration(seconds) * time.Second
}

// RedactedStateURL names the state store without its password: scheme,
// host and database.
func (c *Config) RedactedStateURL() string {
	if c.StateURL == "" || c.StateURL == "memory:" {
		return "memory"
	}
	u, err := url.Parse(c.StateURL)
	if err != nil {
		return "(invalid state_url)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

func checkPresignLimits(maxUses, maxExpires *int) error {
	if maxUses != nil && (*maxUses < 0 || *maxUses > maxLimit) {
		return fmt.Errorf("presign_max_uses %d is out of range (0-%d)", *maxUses, int64(maxLimit))
	}
	if maxExpires != nil && (*maxExpires < 0 || *maxExpires > int(MaxPresignExpires/time.Second)) {
		return fmt.Errorf("presign_max_expires %d is out of range (0-%d seconds)", *maxExpires, int(MaxPresignExpires/time.Second))
	}
	return nil
}

// checkStateURL refuses a state_url the limits cannot use; its messages
// never quote the URL, which may hold a password.
func checkStateURL(stateURL string) error {
	if stateURL == "" || stateURL == "memory:" {
		return nil
	}
	u, err := url.Parse(stateURL)
	if err != nil {
		return errors.New("state_url is not a valid URL (want \"\", redis://host:port/db or rediss://host:port/db)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("state_url scheme %q is not redis or rediss", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("state_url has no host (want redis://host:port/db)")
	}
	return nil
}

func (c *Config) normalizeLimits() []error {
	var errs []error
	bad := func(err error) { errs = append(errs, fmt.Errorf("config: %w", err)) }
	if err := checkStateURL(c.StateURL); err != nil {
		bad(err)
	}
	if err := checkPresignLimits(&c.PresignMaxUses, &c.PresignMaxExpires); err != nil {
		bad(err)
	}
	for _, p := range []struct {
		name  string
		value *string
		def   string
	}{
		{"presign_limits_when_state_down", &c.PresignLimitsWhenStateDown, DefaultPresignLimitsWhenStateDown},
		{"rate_limits_when_state_down", &c.RateLimitsWhenStateDown, DefaultRateLimitsWhenStateDown},
	} {
		switch *p.value {
		case "":
			*p.value = p.def
		case StateDownDeny, StateDownAllow:
		default:
			bad(fmt.Errorf("%s %q is not deny or allow", p.name, *p.value))
		}
	}
	if c.RateLimit != nil {
		if err := c.RateLimit.Normalize(); err != nil {
			bad(fmt.Errorf("rate_limit: %w", err))
		}
	}
	keys := make([]string, 0, len(c.RateLimits))
	for key := range c.RateLimits {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		l := c.RateLimits[key]
		if key == "" {
			bad(errors.New("rate_limits has an empty access key"))
			continue
		}
		if err := l.Normalize(); err != nil {
			bad(fmt.Errorf("rate_limits[%q]: %w", key, err))
		}
		c.RateLimits[key] = l
	}
	return errs
}
