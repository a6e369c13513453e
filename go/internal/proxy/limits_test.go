package proxy

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/limits"
	"github.com/object-storage-proxy/osp/internal/s3op"
)

// The rate is the authenticated key's, taken after the signature and
// before the validator: requests someone could not sign spend nothing of
// the key's budget, and a throttled key costs no validator call.
func TestRateLimitAfterAuthenticationBeforeTheValidator(t *testing.T) {
	srv, _ := newBackend(t)
	var asked atomic.Int64
	bucket, noCache := backendBucket(t, srv, config.PathStyle), 0
	bucket.TTLSeconds = &noCache // the validator is asked every time
	h := newTestHandler(t, map[string]*config.Bucket{"data": bucket},
		func(context.Context, s3op.Access) (bool, error) { asked.Add(1); return true, nil })
	limiter, err := limits.Open("", limits.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{RateLimit: &config.RateLimit{RequestsPerSecond: 0.001, Burst: 2}}
	h.opts.Limits = NewLimits(limiter, cfg, nil, nil)

	for i := 0; i < 5; i++ { // forged: refused, and no budget spent
		if resp := do(t, h, "GET", "/data/k", "", nil, "not-the-secret"); errorCode(t, resp) != "SignatureDoesNotMatch" {
			t.Fatalf("a forged request got %d", resp.StatusCode)
		}
	}
	for i := 0; i < 2; i++ {
		if resp := do(t, h, "GET", "/data/k", "", nil, clientSecret); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp := do(t, h, "GET", "/data/k", "", nil, clientSecret)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "1" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d, Retry-After %q (want the limiter's wait, ~1000 s)", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := errorCode(t, resp); code != "SlowDown" {
		t.Fatalf("over the rate: %s", code)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("the validator was asked %d times, want 2 (not for the throttled request)", n)
	}
}
