package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/object-storage-proxy/osp/internal/accesslog"
	"github.com/object-storage-proxy/osp/internal/authz"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/iam"
	"github.com/object-storage-proxy/osp/internal/limits"
	"github.com/object-storage-proxy/osp/internal/metrics"
	"github.com/object-storage-proxy/osp/internal/proxy"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
)

// Hooks are the host's callables and observers; any may be nil. Callables
// are per configuration: Reload gets new ones with its config.
type Hooks struct {
	Validator     authz.Validator
	BucketFetcher creds.BucketFetcher
	SecretFetcher creds.SecretFetcher
	// RateLimitFetcher gives a client key its rate limit.
	RateLimitFetcher proxy.RateLimitFetcher
	// CallsInFlight reports the calls of a callable kind running now; it
	// is read by the metrics of the server's whole life, so Start takes it
	// and reloads keep the first one.
	CallsInFlight func(kind string) int64
	OnRequest     func()
	Logger        *slog.Logger
	// AccessLogger writes each request's line, when Logger lets info
	// lines through (through Logger when nil).
	AccessLogger *accesslog.Logger
}

// newHandler builds the proxy handler of one configuration, with every
// callable and cache instrumented.
func newHandler(cfg *config.Config, hooks Hooks, transport http.RoundTripper, tokens *iam.Tokens, limiter *limits.Limiter, m *metrics.Metrics, log *slog.Logger) *proxy.Handler {
	secrets := creds.NewClientSecretsTTL(cfg.HMACKeystore, timedFetcher("hmac_fetcher", hooks.SecretFetcher, m), cfg.CacheSize, cfg.HMACFetcherTTL())
	secrets.Observe(func(hit bool) { m.CacheLookup("client_secrets", hit) })
	backends := creds.NewBackendCreds(timedFetcher("bucket_creds_fetcher", hooks.BucketFetcher, m), cfg.BucketCredsFetcherIdentity, cfg.CacheSize)
	backends.Observe(func(hit bool) { m.CacheLookup("bucket_creds", hit) })
	authorizer := authz.New(timedValidator(hooks.Validator, m), cfg.ValidatorIdentity, cfg.CacheSize)
	authorizer.Observe(func(hit bool) { m.CacheLookup("validator", hit) })
	return proxy.New(proxy.Options{
		Buckets:                 cfg.CosMap,
		ClientSecrets:           secrets,
		BackendCreds:            backends,
		Authorizer:              authorizer,
		SkipSignatureValidation: cfg.SkipSignatureValidation,
		VirtualHostDomains:      cfg.VirtualHostDomains,
		TrustForwardedHost:      cfg.TrustedForwardedHost,
		ClientBodyTimeout:       cfg.Timeouts().ClientIdle,
		Transport:               transport,
		Tokens:                  tokens,
		Metrics:                 m,
		Logger:                  log,
		AccessLog:               hooks.AccessLogger,
		OnRequest:               hooks.OnRequest,
		Limits:                  proxy.NewLimits(limiter, cfg, timedFetcher("rate_limit_fetcher", hooks.RateLimitFetcher, m), m),
	})
}

// outcome names how a callable call ended, for metrics.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case s3err.Is(err, s3err.ErrServiceUnavailable):
		return "timeout"
	case s3err.Is(err, s3err.ErrSlowDown):
		return "throttled"
	default:
		return "error"
	}
}

func timedValidator(f authz.Validator, m *metrics.Metrics) authz.Validator {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, a s3op.Access) (bool, error) {
		start := time.Now()
		ok, err := f(ctx, a)
		m.Callable("validator", outcome(err), time.Since(start))
		return ok, err
	}
}

// timedFetcher times each call of a fetcher callable (bucket_creds_fetcher,
// hmac_fetcher, rate_limit_fetcher: each answers text, found or not) under
// kind in the callable metrics.
func timedFetcher[A any, F ~func(context.Context, A) (string, bool, error)](kind string, f F, m *metrics.Metrics) F {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, arg A) (string, bool, error) {
		start := time.Now()
		answer, found, err := f(ctx, arg)
		m.Callable(kind, outcome(err), time.Since(start))
		return answer, found, err
	}
}
