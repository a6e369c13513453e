// Package authz asks the host's validator whether a client token may use a
// bucket, and caches both answers for the bucket's TTL.
package authz

import (
	"context"
	"time"

	"github.com/object-storage-proxy/osp/internal/cache"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
)

// Validator is the host's validator(token, bucket[, method, key,
// operation]) -> bool.
type Validator func(ctx context.Context, a s3op.Access) (bool, error)

// Authorizer decides access, asking the validator at most once per TTL for
// each (token, bucket), or each (token, bucket, method, operation, key) when
// the validator is identity-aware. Allow and deny are both cached. Without
// a validator every authenticated client may use every configured bucket,
// as in the original project.
type Authorizer struct {
	decisions *cache.AccessCache[bool] // nil without a validator
}

// New wraps validate, which may be nil; identity says whether it looks at
// method, key and operation. The cache holds at most cacheSize answers.
func New(validate Validator, identity bool, cacheSize int) *Authorizer {
	if validate == nil {
		return &Authorizer{}
	}
	return &Authorizer{decisions: cache.NewAccessCache("validator", cacheSize, identity, validate)}
}

// Observe makes fn see every cache lookup's result (for metrics).
func (a *Authorizer) Observe(fn func(hit bool)) { a.decisions.Observe(fn) }

// KeyAware reports whether a validator decides per key: then a request
// that names keys in its body (DeleteObjects) is asked about each.
func (a *Authorizer) KeyAware() bool { return a.decisions != nil && a.decisions.Identity() }

// Authorize returns nil when the access is allowed, AccessDenied when the
// validator says no, and the callable's own S3 error (a timeout) or
// InternalError when it fails.
func (a *Authorizer) Authorize(ctx context.Context, access s3op.Access, ttl time.Duration) error {
	if a.decisions == nil {
		return nil
	}
	ok, err := a.decisions.Get(ctx, access, ttl)
	if err != nil {
		return s3err.Callable(err, "The access check for bucket %s failed.", access.Bucket).WithResource(access.Bucket)
	}
	if !ok {
		return s3err.New(s3err.ErrAccessDenied).WithResource(access.Bucket)
	}
	return nil
}
