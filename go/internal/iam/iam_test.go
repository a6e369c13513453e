package iam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeIAM is an IAM token endpoint that counts calls and can fail.
type fakeIAM struct {
	calls   atomic.Int32
	status  atomic.Int32 // 0 = 200
	lifeSec int64
	delay   time.Duration
}

func (f *fakeIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	time.Sleep(f.delay)
	if err := r.ParseForm(); err != nil || r.URL.Path != "/identity/token" || r.Form.Get("grant_type") != grantType ||
		r.Header.Get("Accept") != "application/json" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s := f.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	if r.Form.Get("apikey") != "good-key" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errorCode":"BXNIM0415E"}`)
		return
	}
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d,"expiration":%d}`,
		n, f.lifeSec, time.Now().Unix()+f.lifeSec)
}

func newTokens(t *testing.T, f *fakeIAM) *Tokens {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	tokens := NewTokens(NewClient(srv.URL, http.DefaultTransport), 16, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(tokens.Close)
	return tokens
}

func TestOneFetchForConcurrentRequests(t *testing.T) {
	f := &fakeIAM{lifeSec: 3600, delay: 50 * time.Millisecond}
	tokens := newTokens(t, f)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := tokens.Token(context.Background(), "good-key"); err != nil || tok != "tok-1" {
				t.Errorf("got %q, %v", tok, err)
			}
		}()
	}
	wg.Wait()
	if f.calls.Load() != 1 {
		t.Fatalf("%d IAM calls, want 1", f.calls.Load())
	}
}

func TestRefreshAheadWithoutWaiting(t *testing.T) {
	f := &fakeIAM{lifeSec: 100}
	tokens := newTokens(t, f)
	now := time.Now()
	tokens.now = func() time.Time { return now }
	first, _ := tokens.Token(context.Background(), "good-key")
	now = now.Add(85 * time.Second) // past 4/5 of the lifetime, before the margin
	f.delay = 200 * time.Millisecond
	start := time.Now()
	again, err := tokens.Token(context.Background(), "good-key")
	if err != nil || again != first || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("a request waited for the refresh or lost its token: %q, %v", again, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for f.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(250 * time.Millisecond)
	if got, _ := tokens.Token(context.Background(), "good-key"); got == first {
		t.Fatal("the background refresh did not replace the token")
	}
}

func TestFailures(t *testing.T) {
	f := &fakeIAM{lifeSec: 3600}
	tokens := newTokens(t, f)
	if _, err := tokens.Token(context.Background(), "bad-key"); !errors.Is(err, ErrRejected) || strings.Contains(err.Error(), "bad-key") {
		t.Fatalf("bad key: %v", err)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("a rejected key was retried: %d calls", f.calls.Load())
	}
	f.status.Store(http.StatusServiceUnavailable)
	tokens.budget = 500 * time.Millisecond
	start := time.Now()
	if _, err := tokens.Token(context.Background(), "good-key"); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("IAM down: %v after %v", err, time.Since(start))
	}
	if f.calls.Load() < 3 {
		t.Fatalf("IAM down was not retried: %d calls", f.calls.Load())
	}
	f.status.Store(0)
	if tok, err := tokens.Token(context.Background(), "good-key"); err != nil || tok == "" {
		t.Fatalf("no recovery: %v", err)
	}
}

// A token a backend refuses before its expiry (IAM revoked or expired it)
// is fetched anew by the next request, at most once per
// refusedTokenInterval per key: a fresh token refused again means the key
// lacks a right, and every denied request must not become an IAM call.
func TestRefusedTokenIsFetchedAnewAtMostOncePerInterval(t *testing.T) {
	f := &fakeIAM{lifeSec: 3600}
	tokens := newTokens(t, f)
	now := time.Now()
	tokens.now = func() time.Time { return now }
	ctx := context.Background()
	first, _ := tokens.Token(ctx, "good-key")
	tokens.Refused("good-key", "some-other-token") // not the cached one: nothing happens
	if got, _ := tokens.Token(ctx, "good-key"); got != first || f.calls.Load() != 1 {
		t.Fatalf("a refusal of another token dropped the cached one: %q, %d calls", got, f.calls.Load())
	}
	tokens.Refused("good-key", first)
	second, err := tokens.Token(ctx, "good-key")
	if err != nil || second == first || f.calls.Load() != 2 {
		t.Fatalf("the refused token was kept: %q, %v, %d calls", second, err, f.calls.Load())
	}
	now = now.Add(refusedTokenInterval - time.Second)
	tokens.Refused("good-key", second)
	if got, _ := tokens.Token(ctx, "good-key"); got != second || f.calls.Load() != 2 {
		t.Fatalf("a second refusal within the interval fetched again: %q, %d calls", got, f.calls.Load())
	}
	now = now.Add(2 * time.Second)
	tokens.Refused("good-key", second)
	if got, _ := tokens.Token(ctx, "good-key"); got == second || f.calls.Load() != 3 {
		t.Fatalf("a refusal after the interval kept the token: %q, %d calls", got, f.calls.Load())
	}
}
