// Package s3op names the S3 operation of a request (GetObject, PutObject,
// ListObjectsV2, ...) from its method, target, query and the headers that
// tell operations apart, for authorization callables and metrics.
//
// The operations and what each requires come from the S3 API model that
// botocore ships (see gen.go): a request is named by the operation whose
// method, bucket/key presence, required query keys (and required values,
// as list-type=2) and required headers it has, the most specific such
// operation winning. A request that matches none, matches two equally
// well, carries a subresource key (?acl, ?uploadId, ...) the operation
// does not take, or repeats a key some operation requires, is "Unknown":
// the proxy never guesses an operation a backend might run differently.
package s3op

//go:generate go run gen.go

import (
	"net/http"
	"net/url"
)

// Unknown names a request that is no single S3 operation.
const Unknown = "Unknown"

// Request is what the operation depends on.
type Request struct {
	Method string
	Bucket string
	Key    string
	Query  url.Values
	// Header is the request's header; only whether the headers that tell
	// operations apart (x-amz-copy-source, ...) are present counts, so an
	// empty x-amz-copy-source still makes a copy.
	Header http.Header
}

// scope is what a request addresses.
type scope uint8

const (
	serviceScope scope = iota + 1 // no bucket: GET /
	bucketScope                   // a bucket, no key
	objectScope                   // a bucket and a key
)

// param is a query key an operation requires, with the value it must have
// ("" for any value, or none as for ?acl).
type param struct{ key, value string }

// operation is one row of the table generated from botocore's model.
type operation struct {
	name    string
	method  string
	scope   scope
	query   []param  // required query keys
	headers []string // required headers, canonical
	// takes are the subresource keys, and takesHeaders the
	// distinguishing headers, that the operation accepts.
	takes        []string
	takesHeaders []string
}

// Name returns the S3 operation of r, or Unknown.
func Name(r Request) string {
	sc := scopeOf(r)
	if sc == 0 {
		return Unknown
	}
	for key, values := range r.Query {
		if significant[key] && len(values) > 1 {
			return Unknown // ?list-type=2&list-type=1: S3 may read either
		}
	}
	best, bestScore, tie := "", -1, false
	for _, op := range candidates[kind{r.Method, sc}] {
		if !op.matches(r) {
			continue
		}
		switch score := len(op.query) + len(op.headers); {
		case score > bestScore:
			best, bestScore, tie = op.name, score, false
		case score == bestScore:
			tie = true
		}
	}
	if best == "" || tie {
		return Unknown
	}
	return best
}

// kind is what picks an operation's candidates: its method and scope.
type kind struct {
	method string
	scope  scope
}

// candidates indexes the table by kind; built once, only read.
var candidates = func() map[kind][]*operation {
	m := map[kind][]*operation{}
	for i := range operations {
		op := &operations[i]
		k := kind{op.method, op.scope}
		m[k] = append(m[k], op)
	}
	return m
}()

func scopeOf(r Request) scope {
	switch {
	case r.Bucket == "" && r.Key == "":
		return serviceScope
	case r.Bucket == "":
		return 0
	case r.Key == "":
		return bucketScope
	}
	return objectScope
}

// matches reports whether r has everything op requires and nothing that
// selects another operation.
func (op *operation) matches(r Request) bool {
	for _, p := range op.query {
		values, ok := r.Query[p.key]
		if !ok || (p.value != "" && values[0] != p.value) {
			return false
		}
	}
	for _, h := range op.headers {
		if _, ok := r.Header[h]; !ok {
			return false
		}
	}
	for key := range r.Query {
		if subresources[key] && !contains(op.takes, key) {
			return false
		}
	}
	for _, h := range distinguishingHeaders {
		if _, ok := r.Header[h]; ok && !contains(op.takesHeaders, h) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// IsListing reports whether op lists a bucket's keys, so that its prefix
// query parameter is what the request claims to read.
func IsListing(op string) bool {
	switch op {
	case "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads":
		return true
	}
	return false
}

// Access is one request's claim on a bucket, as authorization callables
// see it: who, which bucket, and (for identity-aware callables) how.
type Access struct {
	Token     string // the client's access key id
	Bucket    string
	Method    string
	Key       string // the object key, the prefix of a listing, or ""
	Operation string // GetObject, PutObject, ListObjectsV2, ...
}

// BucketOnly is a with only the token and bucket kept: the cache key of
// callables that decide per bucket.
func (a Access) BucketOnly() Access { return Access{Token: a.Token, Bucket: a.Bucket} }
