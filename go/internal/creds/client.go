// Package creds finds secrets: the client's (to verify its signature) and
// the backend's (to re-sign for the bucket's real store).
package creds

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/object-storage-proxy/osp/internal/cache"
	"github.com/object-storage-proxy/osp/internal/s3err"
)

// SecretFetcher asks the host (Python's hmac_fetcher) for the secret of an
// access key. found is false when the key is unknown.
type SecretFetcher func(ctx context.Context, accessKey string) (secret string, found bool, err error)

// Unknown keys are cached briefly, so a burst of bad keys does not queue on
// the host's lock; known keys for the configured hmac_fetcher_ttl.
const (
	unknownKeyTTL = 10 * time.Second
	// DefaultKnownKeyTTL is hmac_fetcher_ttl's default.
	DefaultKnownKeyTTL = 5 * time.Minute
)

// ClientSecrets resolves client access keys to secrets from a static
// keystore, then from a fetcher.
type ClientSecrets struct {
	keystore map[string]string
	fetched  *cache.Cache[string, secretAnswer]
}

type secretAnswer struct {
	secret string
	found  bool
}

// NewClientSecrets combines a keystore and an optional fetcher whose
// answers are cached, at most cacheSize of them: a secret for
// DefaultKnownKeyTTL, an unknown key briefly. A reload builds new
// ClientSecrets, so it forgets them all.
func NewClientSecrets(keystore map[string]string, fetch SecretFetcher, cacheSize int) *ClientSecrets {
	return NewClientSecretsTTL(keystore, fetch, cacheSize, DefaultKnownKeyTTL)
}

// NewClientSecretsTTL is NewClientSecrets keeping fetched secrets for
// knownTTL (0: not at all, so a revoked key is refused at its next request).
func NewClientSecretsTTL(keystore map[string]string, fetch SecretFetcher, cacheSize int, knownTTL time.Duration) *ClientSecrets {
	c := &ClientSecrets{keystore: keystore}
	if fetch != nil {
		c.fetched = cache.New(cacheSize, func(k string) string { return k },
			func(ctx context.Context, accessKey string) (secretAnswer, time.Duration, error) {
				secret, found, err := fetch(ctx, accessKey)
				if err != nil {
					return secretAnswer{}, 0, err
				}
				if !found || secret == "" {
					return secretAnswer{}, unknownKeyTTL, nil
				}
				return secretAnswer{secret, true}, knownTTL, nil
			})
	}
	return c
}

// Observe makes fn see every cache lookup's result (for metrics).
func (c *ClientSecrets) Observe(fn func(hit bool)) {
	if c.fetched != nil {
		c.fetched.Observe(fn)
	}
}

// Permanent reports whether accessKey is one of the keystore's: a key
// the proxy was given for good, which has no session token. A fetched key
// may belong to temporary credentials the proxy cannot see.
func (c *ClientSecrets) Permanent(accessKey string) bool {
	_, ok := c.keystore[accessKey]
	return ok
}

// Secret returns the secret for accessKey, or InvalidAccessKeyId.
func (c *ClientSecrets) Secret(ctx context.Context, accessKey string) (string, error) {
	if s, ok := c.keystore[accessKey]; ok {
		return s, nil
	}
	if c.fetched != nil {
		a, err := c.fetched.Get(ctx, accessKey)
		if err != nil {
			return "", s3err.Callable(fmt.Errorf("hmac_fetcher: %w", err), "The credential lookup failed.")
		}
		if a.found {
			return a.secret, nil
		}
	}
	// S3 names the key it did not find; bounded, as it is the client's text.
	shown := accessKey
	if len(shown) > 128 {
		shown = strings.ToValidUTF8(shown[:128], "") + "..."
	}
	return "", s3err.New(s3err.ErrInvalidAccessKeyID).
		With("AWSAccessKeyId", shown)
}
