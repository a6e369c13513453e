// Package authz asks the host's validator whether a client token may use a
// bucket, and caches both answers for the bucket's TTL.
package authz

import (
	"context"
	"fmt"
	"time"

	"github.com/object-storage-proxy/osp/internal/cache"
	"github.com/object-storage-proxy/osp/internal/s3err"
)

// Validator is the host's validator(token, bucket) -> bool.
type Validator func(ctx context.Context, token, bucket string) (bool, error)

const cacheSize = 16384

// decisionKey carries the bucket's TTL so the loader knows how long to keep
// the answer; a bucket's TTL is fixed, so it does not split entries.
type decisionKey struct {
	token, bucket string
	ttl           time.Duration
}

// Authorizer decides access, asking the validator at most once per
// (token, bucket) and TTL. Without a validator every authenticated client
// may use every configured bucket, as in the original project.
type Authorizer struct {
	decisions *cache.Cache[decisionKey, bool]
}

// New wraps validate, which may be nil.
func New(validate Validator) *Authorizer {
	a := &Authorizer{}
	if validate == nil {
		return a
	}
	a.decisions = cache.New(cacheSize, func(k decisionKey) string { return k.token + "\x00" + k.bucket },
		func(ctx context.Context, k decisionKey) (bool, time.Duration, error) {
			ok, err := validate(ctx, k.token, k.bucket)
			if err != nil {
				return false, 0, fmt.Errorf("validator: %w", err)
			}
			return ok, k.ttl, nil
		})
	return a
}

// Authorize returns nil when token may use bucket, AccessDenied when the
// validator says no, and InternalError when it fails.
func (a *Authorizer) Authorize(ctx context.Context, token, bucket string, ttl time.Duration) error {
	if a.decisions == nil {
		return nil
	}
	ok, err := a.decisions.Get(ctx, decisionKey{token, bucket, ttl})
	if err != nil {
		return s3err.Wrap(err, "InternalError", "The access check for bucket %s failed.", bucket).WithResource(bucket)
	}
	if !ok {
		return s3err.New("AccessDenied", "Access Denied").WithResource(bucket)
	}
	return nil
}
