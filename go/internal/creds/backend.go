package creds

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/object-storage-proxy/osp/internal/cache"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
)

// Backend is what the proxy signs with toward a bucket's store: an HMAC
// pair or an IBM Cloud API key.
type Backend struct {
	AccessKey string
	SecretKey string
	APIKey    string
}

// IsHMAC reports whether b is an HMAC pair.
func (b Backend) IsHMAC() bool { return b.AccessKey != "" && b.SecretKey != "" }

// BucketFetcher asks the host (Python's bucket_creds_fetcher) for the
// credentials of a bucket on behalf of a client token (and, for an
// identity-aware fetcher, the request's method, key and operation). The
// answer is an API key or a JSON HMAC pair.
type BucketFetcher func(ctx context.Context, a s3op.Access) (answer string, found bool, err error)

// BackendCreds resolves a bucket's backend credentials: the bucket's own
// from cos_map, else the fetcher's answer for this very token, cached per
// (token, bucket) - or per (token, bucket, method, operation, key) for an
// identity-aware fetcher - for the bucket's TTL, never shared between
// tokens.
type BackendCreds struct {
	fetched *cache.AccessCache[Backend] // nil without a fetcher
}

// NewBackendCreds wraps an optional fetcher; identity says whether it looks
// at method, key and operation. The cache holds at most size answers.
func NewBackendCreds(fetch BucketFetcher, identity bool, size int) *BackendCreds {
	if fetch == nil {
		return &BackendCreds{}
	}
	return &BackendCreds{fetched: cache.NewAccessCache("bucket_creds_fetcher", size, identity, func(ctx context.Context, access s3op.Access) (Backend, error) {
		answer, found, err := fetch(ctx, access)
		if err != nil || !found { // "no credentials" is an answer too, cached like any
			return Backend{}, err
		}
		return parseAnswer(answer)
	})}
}

// Observe makes fn see every cache lookup's result (for metrics).
func (c *BackendCreds) Observe(fn func(hit bool)) { c.fetched.Observe(fn) }

// For returns the credentials for an access to bucket b.
func (c *BackendCreds) For(ctx context.Context, access s3op.Access, b *config.Bucket) (Backend, error) {
	bucket := access.Bucket
	if b.HasHMAC() {
		return Backend{AccessKey: b.AccessKey, SecretKey: b.SecretKey}, nil
	}
	if b.APIKey != "" {
		return Backend{APIKey: b.APIKey}, nil
	}
	if c.fetched == nil {
		return Backend{}, s3err.Newf(s3err.ErrAccessDenied, "No credentials are configured for bucket %s.", bucket).WithResource(bucket)
	}
	creds, err := c.fetched.Get(ctx, access, b.TTL())
	if err != nil {
		return Backend{}, s3err.Callable(err, "The credential lookup for bucket %s failed.", bucket).WithResource(bucket)
	}
	if creds == (Backend{}) {
		return Backend{}, s3err.Newf(s3err.ErrAccessDenied, "No credentials are available for bucket %s.", bucket).WithResource(bucket)
	}
	return creds, nil
}

// parseAnswer reads a fetcher's answer: JSON {"access_key","secret_key"}
// (or {"api_key"}), else the whole text is an API key.
func parseAnswer(answer string) (Backend, error) {
	answer = strings.TrimSpace(answer)
	if !strings.HasPrefix(answer, "{") {
		if answer == "" {
			return Backend{}, fmt.Errorf("empty credentials")
		}
		return Backend{APIKey: answer}, nil
	}
	var pair struct {
		AccessKey  string `json:"access_key"`
		SecretKey  string `json:"secret_key"`
		AccessKey2 string `json:"accessKey"`
		SecretKey2 string `json:"secretKey"`
		APIKey     string `json:"api_key"`
		APIKey2    string `json:"apikey"`
	}
	// The error text of encoding/json can quote input; keep secrets out.
	if json.Unmarshal([]byte(answer), &pair) != nil {
		return Backend{}, fmt.Errorf("credentials are not valid JSON")
	}
	b := Backend{
		AccessKey: first(pair.AccessKey, pair.AccessKey2),
		SecretKey: first(pair.SecretKey, pair.SecretKey2),
		APIKey:    first(pair.APIKey, pair.APIKey2),
	}
	if !b.IsHMAC() && b.APIKey == "" {
		return Backend{}, fmt.Errorf("credentials JSON has neither access_key/secret_key nor api_key")
	}
	return b, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
