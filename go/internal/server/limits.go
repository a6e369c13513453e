package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/limits"
	"github.com/object-storage-proxy/osp/internal/metrics"
)

// stateStore owns the limits' store for the server's whole life: a reload
// with the same state_url keeps it (and every count; a new in-process store
// would forget which URLs are spent), one with another state_url opens the
// new store and retires the old. It watches the store, so that readyz and
// the osp_limit_state_up gauge tell its health and its going down and
// coming back are each logged once, not per request.
type stateStore struct {
	log *slog.Logger

	mu        sync.Mutex
	stateURL  string
	name      string // without secrets
	limiter   *limits.Limiter
	reachable bool
	lastErr   error
	since     time.Time
	policies  string // for readyz: what the limits do meanwhile
	stop      chan struct{}
}

// stateCheckInterval is how often a shared store is pinged: how soon its
// coming back is seen when no request tells (a request tells at once of
// its going away).
const stateCheckInterval = time.Second

// retireAfter keeps a replaced store open for requests that began before
// the reload.
const retireAfter = time.Minute

func newStateStore(log *slog.Logger, m *metrics.Metrics) *stateStore {
	s := &stateStore{log: log, reachable: true}
	m.StateStore(func() (string, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.name, s.reachable
	})
	return s
}

// limiterFor returns the Limiter of cfg: on the current store when
// state_url is unchanged, with cfg's failure policies.
func (s *stateStore) limiterFor(cfg *config.Config) (*limits.Limiter, error) {
	policies := limits.Policies{
		Uses:      policyOf(cfg.PresignLimitsWhenStateDown),
		Requests:  policyOf(cfg.RateLimitsWhenStateDown),
		Bandwidth: policyOf(cfg.RateLimitsWhenStateDown),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies = fmt.Sprintf("presigned use limits %s, rate limits %s", cfg.PresignLimitsWhenStateDown, cfg.RateLimitsWhenStateDown)
	if s.limiter != nil && s.stateURL == cfg.StateURL {
		return s.limiter.WithPolicies(policies), nil
	}
	limiter, err := limits.Open(cfg.StateURL, limits.Options{Policies: policies, OnFallback: func(kind limits.Kind, _ limits.Policy, err error) {
		if !errors.Is(err, limits.ErrFull) {
			s.set(false, err)
		}
	}})
	if err != nil {
		return nil, fmt.Errorf("state_url: %w", err)
	}
	old, oldStop := s.limiter, s.stop
	s.stateURL, s.name, s.limiter, s.reachable, s.lastErr = cfg.StateURL, cfg.RedactedStateURL(), limiter, true, nil
	s.stop = make(chan struct{})
	go s.watch(limiter, s.stop)
	if old != nil {
		close(oldStop)
		time.AfterFunc(retireAfter, func() { _ = old.Close() })
	}
	s.log.Info("limits state store", "store", s.name, "shared", cfg.StateURL != "" && cfg.StateURL != "memory:")
	return limiter.WithPolicies(policies), nil
}

func policyOf(name string) limits.Policy {
	if name == config.StateDownAllow {
		return limits.FailOpen
	}
	return limits.FailClosed
}

// watch pings the store until stop closes. The memory store always
// answers, so its watch costs a ping of nothing a second.
func (s *stateStore) watch(limiter *limits.Limiter, stop chan struct{}) {
	t := time.NewTicker(stateCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), stateCheckInterval)
			h := limiter.Health(ctx)
			cancel()
			s.set(h.Reachable, h.Err)
		}
	}
}

// set records the store's health and logs a change, once.
func (s *stateStore) set(reachable bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reachable == reachable {
		return
	}
	s.reachable, s.lastErr = reachable, err
	if reachable {
		s.log.Info("limits state store answers again", "store", s.name, "down_for", time.Since(s.since).Round(time.Millisecond).String())
		return
	}
	s.since = time.Now()
	// err names the store by scheme, host and database only.
	s.log.Warn("limits state store does not answer; the failure policies apply until it does", "store", s.name, "policies", s.policies, "error", err)
}

// readiness is readyz's line about the store. The proxy stays ready while
// the store is down: the failure policies keep it serving (only what they
// deny is refused), and every instance of a fleet shares the store, so
// taking them out of a load balancer would turn a Redis outage into a
// total one.
func (s *stateStore) readiness() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reachable {
		return fmt.Sprintf("limits state store %s: up\n", s.name)
	}
	return fmt.Sprintf("limits state store %s: down since %s (%s)\n", s.name, s.since.UTC().Format(time.RFC3339), s.policies)
}

// close stops the watch and closes the store.
func (s *stateStore) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limiter != nil {
		close(s.stop)
		_ = s.limiter.Close()
		s.limiter = nil
	}
}
