package creds

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
)

func code(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	return ""
}

func TestParseAnswer(t *testing.T) {
	cases := map[string]Backend{
		"my-api-key":                             {APIKey: "my-api-key"},
		`{"access_key": "a", "secret_key": "s"}`: {AccessKey: "a", SecretKey: "s"},
		`{"accessKey": "a", "secretKey": "s"}`:   {AccessKey: "a", SecretKey: "s"},
		`{"api_key": "k"}`:                       {APIKey: "k"},
	}
	for in, want := range cases {
		if got, err := parseAnswer(in); err != nil || got != want {
			t.Errorf("%s: got %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", `{"access_key": "a"}`, `{"secret_key": "SECRETVALUE"`} {
		_, err := parseAnswer(bad)
		if err == nil || strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

func TestBackendCredsPerToken(t *testing.T) {
	var calls atomic.Int32
	c := NewBackendCreds(func(ctx context.Context, a s3op.Access) (string, bool, error) {
		calls.Add(1)
		switch a.Token {
		case "alice":
			return `{"access_key": "alice-ak", "secret_key": "s"}`, true, nil
		case "boom":
			return "", false, errors.New("raised")
		}
		return "", false, nil
	}, false, 64)
	ttl := 60
	b := &config.Bucket{TTLSeconds: &ttl}
	for i := 0; i < 3; i++ { // other keys, same (token, bucket): one call
		got, err := c.For(context.Background(), s3op.Access{Token: "alice", Bucket: "data", Key: "k1"}, b)
		if err != nil || got.AccessKey != "alice-ak" {
			t.Fatalf("got %+v, %v", got, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("fetcher called %d times, want 1 within the TTL", calls.Load())
	}
	if _, err := c.For(context.Background(), s3op.Access{Token: "bob", Bucket: "data"}, b); code(err) != "AccessDenied" {
		t.Fatalf("bob: %v", err)
	}
	if _, err := c.For(context.Background(), s3op.Access{Token: "boom", Bucket: "data"}, b); code(err) != "InternalError" {
		t.Fatalf("boom: %v", err)
	}
	static := &config.Bucket{AccessKey: "k", SecretKey: "s"}
	if got, _ := c.For(context.Background(), s3op.Access{Token: "bob", Bucket: "data"}, static); got.AccessKey != "k" {
		t.Fatal("a bucket's own credentials come first")
	}
}

func TestClientSecrets(t *testing.T) {
	var calls atomic.Int32
	c := NewClientSecrets(map[string]string{"static": "s1"}, func(ctx context.Context, ak string) (string, bool, error) {
		calls.Add(1)
		if ak == "fetched" {
			return "s2", true, nil
		}
		return "", false, nil
	}, 64)
	for _, tc := range []struct{ ak, secret, code string }{
		{"static", "s1", ""}, {"fetched", "s2", ""}, {"fetched", "s2", ""}, {"nobody", "", "InvalidAccessKeyId"}, {"nobody", "", "InvalidAccessKeyId"},
	} {
		s, err := c.Secret(context.Background(), tc.ak)
		if s != tc.secret || code(err) != tc.code {
			t.Errorf("%s: got %q, %v", tc.ak, s, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("fetcher called %d times, want 2 (one per unknown key, cached)", calls.Load())
	}
}

func TestClientSecretsTTLZeroRevokesAtOnce(t *testing.T) {
	var calls atomic.Int32
	var revoked atomic.Bool
	c := NewClientSecretsTTL(nil, func(ctx context.Context, ak string) (string, bool, error) {
		calls.Add(1)
		if revoked.Load() {
			return "", false, nil
		}
		return "s", true, nil
	}, 64, 0)
	for range 2 {
		if s, err := c.Secret(context.Background(), "k"); s != "s" || err != nil {
			t.Fatalf("got %q, %v", s, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("fetcher called %d times, want 2 (ttl 0 keeps no secret)", calls.Load())
	}
	revoked.Store(true)
	if _, err := c.Secret(context.Background(), "k"); code(err) != "InvalidAccessKeyId" {
		t.Fatalf("a revoked key got %v", err)
	}
}
