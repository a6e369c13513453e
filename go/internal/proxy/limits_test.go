package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

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

// doPresigned sends a GET of target by a URL presigned with secret,
// returning the answer and the URL's signature.
func doPresigned(t *testing.T, h http.Handler, target, secret string) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "http://proxy.test:6190"+target+"?X-Amz-Expires=600", nil)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: secret},
		r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signed)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", signed, nil))
	return w.Result(), u.Query().Get("X-Amz-Signature")
}

// A presigned request whose bucket limits its uses takes its request from
// the key's budget with its use, after the validator (one round trip on
// Redis): a throttled attempt spends no use, and a request the validator
// refuses still spends the budget.
func TestPresignedRateTakenWithTheUse(t *testing.T) {
	srv, _ := newBackend(t)
	var asked atomic.Int64
	var deny atomic.Bool
	bucket, noCache, uses := backendBucket(t, srv, config.PathStyle), 0, 5
	bucket.TTLSeconds = &noCache
	bucket.PresignMaxUses = &uses
	h := newTestHandler(t, map[string]*config.Bucket{"data": bucket},
		func(context.Context, s3op.Access) (bool, error) { asked.Add(1); return !deny.Load(), nil })
	limiter, err := limits.Open("", limits.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{RateLimit: &config.RateLimit{RequestsPerSecond: 0.001, Burst: 2}}
	h.opts.Limits = NewLimits(limiter, cfg, nil, nil)

	resp, sig := doPresigned(t, h, "/data/k", clientSecret)
	if resp.StatusCode != 200 {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	deny.Store(true)
	if resp, _ := doPresigned(t, h, "/data/other", clientSecret); resp.StatusCode != 403 {
		t.Fatalf("refused by the validator: %d", resp.StatusCode)
	}
	deny.Store(false)
	resp, _ = doPresigned(t, h, "/data/k", clientSecret)
	if code := errorCode(t, resp); resp.StatusCode != 503 || code != "SlowDown" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request, over a burst of 2 (the refused one took its part): %d %s", resp.StatusCode, code)
	}
	if d, _ := limiter.UsePresigned(context.Background(), sig, uses, time.Now().Add(time.Minute)); d.Uses != 2 {
		t.Errorf("the URL's next use is number %d, want 2: the throttled attempt spent a use", d.Uses)
	}
	if n := asked.Load(); n != 3 {
		t.Errorf("the validator was asked %d times, want 3 (the throttled presigned request too)", n)
	}
}
