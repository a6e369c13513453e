package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Fetcher gets a fresh token for an API key; *Client is one.
type Fetcher interface {
	Fetch(ctx context.Context, apiKey string) (Token, error)
}

// Retry policy for fetching a token a request is waiting for.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 800 * time.Millisecond
	retryBudget  = 3 * time.Second
)

// Tokens caches one token per API key. A request gets the cached token
// while it is good; once less than a fifth of its lifetime is left, the
// first request to see that starts a refresh in the background and keeps
// using the old token. Only a missing or (nearly) expired token makes a
// request wait, and concurrent waiters share one fetch.
type Tokens struct {
	fetch  Fetcher
	cache  *lru.Cache[string, Token]
	group  singleflight.Group
	now    func() time.Time
	log    *slog.Logger
	budget time.Duration

	// onLookup and onFetch observe cache results and IAM calls (metrics).
	onLookup func(hit bool)
	onFetch  func(err error)

	// dropped is when a backend's refusal last made an API key's token be
	// fetched anew (see Refused).
	dropped *lru.Cache[string, time.Time]

	mu         sync.Mutex
	refreshing map[string]bool
	background sync.WaitGroup
	stopped    chan struct{}
}

// NewTokens caches tokens of at most size API keys.
func NewTokens(fetch Fetcher, size int, log *slog.Logger) *Tokens {
	cache, err := lru.New[string, Token](max(size, 1))
	if err != nil { // only for a size <= 0, excluded above
		panic(err)
	}
	dropped, err := lru.New[string, time.Time](max(size, 1))
	if err != nil {
		panic(err)
	}
	return &Tokens{
		fetch: fetch, cache: cache, dropped: dropped, now: time.Now, log: log, budget: retryBudget,
		refreshing: map[string]bool{}, stopped: make(chan struct{}),
	}
}

// Observe makes lookup see every cache lookup's result and fetch every IAM
// call's outcome. Call it before the Tokens are used.
func (t *Tokens) Observe(lookup func(hit bool), fetch func(err error)) {
	t.onLookup, t.onFetch = lookup, fetch
}

// Token returns a usable access token for apiKey.
func (t *Tokens) Token(ctx context.Context, apiKey string) (string, error) {
	now := t.now()
	tok, ok := t.cache.Get(apiKey)
	ok = ok && now.Before(usableUntil(tok))
	if t.onLookup != nil {
		t.onLookup(ok)
	}
	if ok {
		if !now.Before(refreshAt(tok)) {
			t.refreshInBackground(apiKey)
		}
		return tok.AccessToken, nil
	}
	ch := t.group.DoChan(apiKey, func() (any, error) { return t.fetchWithRetry(apiKey) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(Token).AccessToken, nil
	case <-ctx.Done():
		return "", fmt.Errorf("iam: waiting for a token: %w", ctx.Err())
	}
}

// refusedTokenInterval bounds how often a backend's refusal makes an API
// key's token be fetched anew: a refusal of a fresh token says the key
// lacks a right, not that the token went stale, and must not turn every
// denied request into a call to IAM.
const refusedTokenInterval = 30 * time.Second

// Refused tells the cache that a backend refused accessToken, the token of
// apiKey (401 or 403): IAM may have revoked or expired it before its
// stated expiry. The token is dropped, so the next request fetches a new
// one, unless it was replaced already or apiKey's token was dropped less
// than refusedTokenInterval ago.
func (t *Tokens) Refused(apiKey, accessToken string) {
	tok, ok := t.cache.Peek(apiKey)
	if !ok || tok.AccessToken != accessToken {
		return
	}
	now := t.now()
	if last, ok := t.dropped.Get(apiKey); ok && now.Sub(last) < refusedTokenInterval {
		return
	}
	t.dropped.Add(apiKey, now)
	t.cache.Remove(apiKey)
	t.log.Info("a backend refused an IAM token before its expiry; the next request fetches a new one",
		"expires", tok.Expires.UTC().Format(time.RFC3339))
}

// refreshAt is when a background refresh starts: a fifth of the lifetime
// before expiry (12 minutes for IBM's one-hour tokens).
func refreshAt(tok Token) time.Time { return tok.Expires.Add(-tok.lifetime() / 5) }

// usableUntil leaves a margin so a token does not expire in flight.
func usableUntil(tok Token) time.Time {
	return tok.Expires.Add(-min(30*time.Second, tok.lifetime()/10))
}

func (t *Tokens) refreshInBackground(apiKey string) {
	t.mu.Lock()
	if t.refreshing[apiKey] {
		t.mu.Unlock()
		return
	}
	t.refreshing[apiKey] = true
	t.background.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.background.Done()
		defer func() {
			t.mu.Lock()
			delete(t.refreshing, apiKey)
			t.mu.Unlock()
		}()
		_, err, _ := t.group.Do(apiKey, func() (any, error) { return t.fetchWithRetry(apiKey) })
		if err != nil {
			t.log.Warn("IAM token refresh failed; the current token stays in use", "error", err.Error())
		}
	}()
}

// fetchWithRetry fetches a token, retrying transient failures with
// exponential backoff within the retry budget, and caches it.
func (t *Tokens) fetchWithRetry(apiKey string) (Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.budget)
	defer cancel()
	backoff := firstBackoff
	for {
		tok, err := t.fetch.Fetch(ctx, apiKey)
		if t.onFetch != nil {
			t.onFetch(err)
		}
		if err == nil {
			t.cache.Add(apiKey, tok)
			return tok, nil
		}
		if errors.Is(err, ErrRejected) {
			return Token{}, err
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, maxBackoff)
		case <-ctx.Done():
			return Token{}, fmt.Errorf("iam: no token within %v: %w", t.budget, err)
		case <-t.stopped:
			return Token{}, fmt.Errorf("iam: stopped: %w", err)
		}
	}
}

// Close stops retries and waits for background refreshes to end.
func (t *Tokens) Close() {
	close(t.stopped)
	t.background.Wait()
}
