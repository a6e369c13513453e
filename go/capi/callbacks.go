package main

/*
#include <stdlib.h>
#include "osp.h"

// Go cannot call a C function pointer; this does it for Go.
static int32_t osp_call(osp_callback_fn fn, uint64_t id, const char *args,
                        char *out, size_t cap, size_t *len) {
	return fn(id, args, out, cap, len);
}
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/object-storage-proxy/osp/internal/authz"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/proxy"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
)

// answerCap bounds a callable's answer (a secret, an API key, a JSON pair).
const answerCap = 64 << 10

var errNoTrampoline = errors.New("no callback trampoline registered")

// call invokes host callable id with args and returns its answer; found is
// false when it answered None (or False).
func call(id uint64, args any) (answer string, found bool, err error) {
	fn := callback.Load()
	if fn == nil {
		return "", false, errNoTrampoline
	}
	argsJSON, err := json.Marshal(args)
	if err != nil {
		return "", false, fmt.Errorf("encode callable arguments: %w", err)
	}
	cArgs := C.CString(string(argsJSON))
	defer C.free(unsafe.Pointer(cArgs))
	out := (*C.char)(C.malloc(answerCap))
	defer C.free(unsafe.Pointer(out))
	var n C.size_t
	code := C.osp_call(*fn, C.uint64_t(id), cArgs, out, answerCap, &n)
	text := C.GoStringN(out, C.int(min(n, answerCap)))
	switch code {
	case C.OSP_CB_OK:
		return text, true, nil
	case C.OSP_CB_NONE:
		return "", false, nil
	case C.OSP_CB_ERROR:
		return "", false, fmt.Errorf("callable raised: %s", text)
	case C.OSP_CB_BAD_TYPE:
		return "", false, fmt.Errorf("callable returned the wrong type: %s", text)
	case C.OSP_CB_TOO_LONG:
		return "", false, fmt.Errorf("callable answer longer than %d bytes", answerCap)
	default:
		return "", false, fmt.Errorf("callback trampoline returned unknown code %d", int32(code))
	}
}

// callWithTimeout runs call under the server's bound of concurrent calls
// and gives up after timeout: a host callable that hangs cannot be
// interrupted, so its caller stops waiting for it (the call finishes,
// unobserved, whenever the callable returns, and only then gives its slot
// back).
func callWithTimeout(limiter *callLimiter, kind string, id uint64, args any, timeout time.Duration) (string, bool, error) {
	if !limiter.acquire(kind) {
		return "", false, errSlowDown(kind, limiter.limit.Load())
	}
	type result struct {
		answer string
		found  bool
		err    error
	}
	done := make(chan result, 1)
	go func() {
		defer limiter.release(kind)
		answer, found, err := call(id, args)
		done <- result{answer, found, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return "", false, fmt.Errorf("%s: %w", kind, r.err)
		}
		return r.answer, r.found, nil
	case <-timer.C:
		return "", false, s3err.Wrapf(fmt.Errorf("%s timed out after %v", kind, timeout),
			s3err.ErrServiceUnavailable, "The authorization service did not answer in time; please try again.")
	}
}

// accessArgs are the arguments of validator and bucket_creds_fetcher; the
// host passes method, key and operation only to callables that take them.
func accessArgs(a s3op.Access) map[string]string {
	return map[string]string{"token": a.Token, "bucket": a.Bucket, "method": a.Method, "key": a.Key, "operation": a.Operation}
}

func validatorHook(limiter *callLimiter, id *uint64, timeout time.Duration) authz.Validator {
	if id == nil {
		return nil
	}
	return func(ctx context.Context, a s3op.Access) (bool, error) {
		_, ok, err := callWithTimeout(limiter, "validator", *id, accessArgs(a), timeout)
		return ok, err
	}
}

func bucketFetcherHook(limiter *callLimiter, id *uint64, timeout time.Duration) creds.BucketFetcher {
	if id == nil {
		return nil
	}
	return func(ctx context.Context, a s3op.Access) (string, bool, error) {
		return callWithTimeout(limiter, "bucket_creds_fetcher", *id, accessArgs(a), timeout)
	}
}

func secretFetcherHook(limiter *callLimiter, id *uint64, timeout time.Duration) creds.SecretFetcher {
	if id == nil {
		return nil
	}
	return func(ctx context.Context, accessKey string) (string, bool, error) {
		return callWithTimeout(limiter, "hmac_fetcher", *id, map[string]string{"access_key": accessKey}, timeout)
	}
}

func rateLimitFetcherHook(limiter *callLimiter, id *uint64, timeout time.Duration) proxy.RateLimitFetcher {
	if id == nil {
		return nil
	}
	return func(ctx context.Context, accessKey string) (string, bool, error) {
		return callWithTimeout(limiter, "rate_limit_fetcher", *id, map[string]string{"access_key": accessKey}, timeout)
	}
}
