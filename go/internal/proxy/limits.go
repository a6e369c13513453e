package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/object-storage-proxy/osp/internal/cache"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/limits"
	"github.com/object-storage-proxy/osp/internal/metrics"
	"github.com/object-storage-proxy/osp/internal/s3err"
)

// RateLimitFetcher asks the host (Python's rate_limit_fetcher) for a client
// key's limit, as a JSON object of config.RateLimit's fields; found is false
// when it has none for the key (the default applies).
type RateLimitFetcher func(ctx context.Context, accessKey string) (answer string, found bool, err error)

// Limits are one configuration's limits (docs/limits.md) on counts that
// outlive it: the Limiter's store is kept across reloads, so a reload
// forgets no spent URL.
type Limits struct {
	limiter *limits.Limiter
	cfg     *config.Config
	fetched *cache.Cache[string, fetchedRate]
	metrics *metrics.Metrics
}

type fetchedRate struct {
	limit config.RateLimit
	found bool
}

// NewLimits applies cfg's limits with limiter's counts. fetch, if set, is
// asked for keys rate_limits does not name; its answers are kept
// hmac_fetcher_ttl, like the secrets of hmac_fetcher.
func NewLimits(limiter *limits.Limiter, cfg *config.Config, fetch RateLimitFetcher, m *metrics.Metrics) *Limits {
	l := &Limits{limiter: limiter, cfg: cfg, metrics: m}
	if fetch != nil {
		ttl := cfg.HMACFetcherTTL()
		l.fetched = cache.New(cfg.CacheSize, func(k string) string { return k },
			func(ctx context.Context, accessKey string) (fetchedRate, time.Duration, error) {
				answer, found, err := fetch(ctx, accessKey)
				if err != nil || !found {
					return fetchedRate{}, ttl, err
				}
				limit, err := parseRateLimit(answer)
				if err != nil {
					return fetchedRate{}, 0, err
				}
				return fetchedRate{limit, true}, ttl, nil
			})
	}
	return l
}

// parseRateLimit reads a rate_limit_fetcher answer as strictly as the
// configuration reads rate_limits.
func parseRateLimit(answer string) (config.RateLimit, error) {
	var limit config.RateLimit
	dec := json.NewDecoder(bytes.NewReader([]byte(answer)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&limit); err != nil {
		return limit, fmt.Errorf("rate_limit_fetcher answered %w", err)
	}
	if err := limit.Normalize(); err != nil {
		return limit, fmt.Errorf("rate_limit_fetcher answered a bad limit: %w", err)
	}
	return limit, nil
}

// rateOf is the limit of an authenticated client key: its own in
// rate_limits, else the fetcher's, else the default.
func (l *Limits) rateOf(ctx context.Context, accessKey string) (config.RateLimit, error) {
	if limit, ok := l.cfg.RateLimits[accessKey]; ok {
		return limit, nil
	}
	if l.fetched != nil {
		a, err := l.fetched.Get(ctx, accessKey)
		if err != nil {
			return config.RateLimit{}, s3err.Callable(fmt.Errorf("rate_limit_fetcher: %w", err), "The rate limit lookup failed.")
		}
		if a.found {
			return a.limit, nil
		}
	}
	if l.cfg.RateLimit != nil {
		return *l.cfg.RateLimit, nil
	}
	return config.RateLimit{}, nil
}

// label is the metrics label of a key: itself only when the configuration
// names it, so clients cannot grow the label set.
func (l *Limits) label(accessKey string) string {
	if _, ok := l.cfg.RateLimits[accessKey]; ok {
		return accessKey
	}
	return "_other"
}

// fellBack counts a decision a failure policy made (the log line of the
// store's going down is the server's, once).
func (l *Limits) fellBack(kind limits.Kind, d limits.Decision) {
	if d.Fallback != 0 && l.metrics != nil {
		l.metrics.LimitFallback(kind.String(), d.Fallback.String())
	}
}

// keyRate is a request's place under its key's rate limit.
type keyRate struct {
	limit config.RateLimit
	// withUse: the request is still to be taken from the key's budget,
	// together with its presigned use (spendPresignedUse).
	withUse bool
}

// limitRequests takes one request from the authenticated key's budget. It
// runs after authentication, so that no one spends another key's budget
// with requests they could not sign, and before the validator, so that a
// throttled key costs no callable call. A presigned request whose bucket
// limits its uses is the exception: its request is taken with its use,
// after the validator (one round trip on Redis instead of two), and
// settleRate takes it if the request is refused before. It records in kr
// the key's limit, whose bandwidth applies once the request is forwarded.
// bucket is nil when the request names no served bucket.
func (h *Handler) limitRequests(ctx context.Context, w http.ResponseWriter, auth authenticated, bucket *config.Bucket, kr *keyRate) error {
	l := h.opts.Limits
	if l == nil {
		return nil
	}
	limit, err := l.rateOf(ctx, auth.token)
	kr.limit = limit
	if err != nil || limit.RequestsPerSecond == 0 {
		return err
	}
	if auth.presigned && bucket != nil {
		if maxUses, _ := l.cfg.PresignLimits(bucket); maxUses > 0 {
			kr.withUse = true
			return nil
		}
	}
	d, err := l.limiter.Allow(ctx, auth.token, requestLimit(limit))
	if err != nil {
		return err
	}
	return l.answerRate(w, auth.token, limit, d)
}

func requestLimit(limit config.RateLimit) limits.RequestLimit {
	return limits.RequestLimit{PerSecond: limit.RequestsPerSecond, Burst: limit.Burst}
}

// answerRate turns the rate's decision into the request's answer: nil to
// go on, else why not.
func (l *Limits) answerRate(w http.ResponseWriter, accessKey string, limit config.RateLimit, d limits.Decision) error {
	l.fellBack(limits.Requests, d)
	switch {
	case d.Allowed:
		return nil
	case d.Fallback != 0:
		return s3err.Wrapf(d.Err, s3err.ErrServiceUnavailable, "The request rate cannot be checked now; please try again.")
	}
	if l.metrics != nil {
		l.metrics.Throttled(l.label(accessKey))
	}
	// Whole seconds, rounded up: a client that waits that long is served.
	w.Header().Set("Retry-After", strconv.Itoa(int(max(1, math.Ceil(d.RetryAfter.Seconds())))))
	return s3err.Wrap(fmt.Errorf("request rate limit of %g/s (burst %d) reached", limit.RequestsPerSecond, limit.Burst),
		s3err.ErrSlowDown)
}

// settleRate takes from the key's budget a request whose rate was left to
// be taken with its use (limitRequests) but that was refused before its
// use was counted, so that refused requests spend the budget as they do
// when the rate is taken first. The refusal stands whatever the rate says.
func (h *Handler) settleRate(ctx context.Context, accessKey string, kr *keyRate) {
	if !kr.withUse {
		return
	}
	kr.withUse = false
	l := h.opts.Limits
	if d, err := l.limiter.Allow(ctx, accessKey, requestLimit(kr.limit)); err == nil {
		l.fellBack(limits.Requests, d)
	}
}

// checkPresignExpiry refuses a presigned URL valid for longer than its
// bucket allows, whatever the client's signer allowed.
func (h *Handler) checkPresignExpiry(auth authenticated, bucket *config.Bucket) error {
	l := h.opts.Limits
	if l == nil || !auth.presigned {
		return nil
	}
	_, maxExpires := l.cfg.PresignLimits(bucket)
	if auth.expiresIn <= maxExpires {
		return nil
	}
	if l.metrics != nil {
		l.metrics.PresignRefused("expires_too_long")
	}
	return s3err.Newf(s3err.ErrAccessDenied, "The presigned URL is valid for %d seconds (X-Amz-Expires); this bucket accepts at most %d.",
		int64(auth.expiresIn/time.Second), int64(maxExpires/time.Second))
}

// spendPresignedUse counts a use of a presigned URL whose bucket limits
// them, and takes the request from its key's budget if limitRequests left
// that to it. It runs when the request is about to be forwarded, every
// other check passed, so a refused attempt spends nothing; a throttled one
// spends no use either. The URL is known by its signature: what was
// verified, so re-encoding, reordering or adding query parameters gives
// either the same URL or one whose signature fails.
func (h *Handler) spendPresignedUse(ctx context.Context, w http.ResponseWriter, auth authenticated, bucket *config.Bucket, kr *keyRate) error {
	l := h.opts.Limits
	if l == nil || !auth.presigned {
		return nil
	}
	maxUses, _ := l.cfg.PresignLimits(bucket)
	if maxUses == 0 {
		return nil
	}
	var d limits.Decision
	if kr.withUse {
		kr.withUse = false
		rate, use, err := l.limiter.AllowUse(ctx, auth.token, requestLimit(kr.limit), auth.signature, maxUses, auth.expiresAt)
		if err != nil {
			return err
		}
		if err := l.answerRate(w, auth.token, kr.limit, rate); err != nil {
			return err
		}
		d = use
	} else {
		var err error
		if d, err = l.limiter.UsePresigned(ctx, auth.signature, maxUses, auth.expiresAt); err != nil {
			return err
		}
	}
	l.fellBack(limits.Uses, d)
	switch {
	case d.Allowed:
		return nil
	case d.Fallback != 0:
		return s3err.Wrapf(d.Err, s3err.ErrServiceUnavailable, "The presigned URL's uses cannot be counted now; please try again.")
	}
	if l.metrics != nil {
		l.metrics.PresignRefused("uses_spent")
	}
	return s3err.Newf(s3err.ErrAccessDenied, "This presigned URL may be used %d time(s); its uses are spent.", maxUses)
}

// throttleUpload slows the client's body to the key's upload limit.
func (h *Handler) throttleUpload(r *http.Request, accessKey string, rate config.RateLimit) {
	if rate.UploadBytesPerSecond == 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = throttledBody{
		Reader: h.opts.Limits.limiter.Throttle(r.Context(), r.Body, accessKey+"/up", rate.UploadBytesPerSecond),
		Closer: r.Body,
	}
}

// throttleDownload slows a backend's answer to the key's download limit;
// a slowed answer is never failed (unless the bandwidth policy denies
// while the store is down).
func (h *Handler) throttleDownload(r *http.Request, fw *forward, body io.Reader) io.Reader {
	if fw.rate.DownloadBytesPerSecond == 0 {
		return body
	}
	return h.opts.Limits.limiter.Throttle(r.Context(), body, fw.accessKey+"/down", fw.rate.DownloadBytesPerSecond)
}

type throttledBody struct {
	io.Reader
	io.Closer
}
