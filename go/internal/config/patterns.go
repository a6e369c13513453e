package config

import (
	"fmt"
	"sort"
	"strings"
)

// A cos_map key is a bucket name or a pattern: a prefix followed by one
// '*' at the end ("team-a-*"), or "*" alone for every other bucket. A
// request's bucket is served by the entry of its exact name if there is
// one, else by the longest pattern whose prefix it starts with. Matching is
// byte for byte (case-sensitive, as S3 bucket names are): "TEAM-A-x" is not
// served by "team-a-*".

// Wildcard ends a pattern key.
const Wildcard = "*"

// MaxBucketNameLength is the longest bucket name any S3 rule allows (the
// legacy us-east-1 one).
const MaxBucketNameLength = 255

// IsPattern reports whether a cos_map key is a pattern rather than a
// bucket name.
func IsPattern(key string) bool { return strings.Contains(key, Wildcard) }

// ValidBucketName accepts what a bucket can be named under S3's current
// rules or its legacy ones (us-east-1 once allowed upper case and '_', up
// to 255 characters). The proxy refuses any other name before looking it
// up, so it is also what a pattern's prefix must be able to start.
func ValidBucketName(name string) bool {
	if name == "" || len(name) > MaxBucketNameLength || name == "." || name == ".." {
		return false
	}
	return bucketNameChars(name)
}

func bucketNameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CheckPattern refuses a pattern key that is a typo: a '*' anywhere but at
// the end, more than one, or a prefix no valid bucket name starts with
// (a character no bucket name has, or too long to leave room for one more).
// A key without '*' is a bucket name and is not checked here.
func CheckPattern(key string) error {
	if !IsPattern(key) {
		return nil
	}
	prefix, ok := strings.CutSuffix(key, Wildcard)
	switch {
	case !ok || strings.Contains(prefix, Wildcard):
		return fmt.Errorf("a pattern has one '*', at the end (like \"team-a-*\" or \"*\")")
	case len(prefix) >= MaxBucketNameLength:
		return fmt.Errorf("the pattern's prefix is %d characters long: no bucket name (at most %d) could follow it", len(prefix), MaxBucketNameLength)
	case !bucketNameChars(prefix):
		return fmt.Errorf("the pattern's prefix %q has a character no bucket name has (letters, digits, '.', '-' and '_' only)", prefix)
	}
	return nil
}

// Entry is the cos_map entry that serves a bucket: its key (the bucket's
// own name, or the pattern) and its settings.
type Entry struct {
	Key     string
	Bucket  *Bucket
	Pattern bool
}

// Resolver finds the entry serving a bucket name. It is built once per
// configuration and read concurrently, never changed.
type Resolver struct {
	exact    map[string]*Bucket
	patterns []Entry // longest prefix first; "*" last
}

// NewResolver indexes a cos_map. Keys are expected to have passed
// CheckPattern (Parse does); one that has not is taken as a bucket name.
func NewResolver(cosMap map[string]*Bucket) *Resolver {
	r := &Resolver{exact: make(map[string]*Bucket, len(cosMap))}
	for key, b := range cosMap {
		if b == nil {
			continue
		}
		if IsPattern(key) && CheckPattern(key) == nil {
			r.patterns = append(r.patterns, Entry{Key: key, Bucket: b, Pattern: true})
			continue
		}
		r.exact[key] = b
	}
	// Two patterns of one length can never match the same name, so this
	// order decides every overlap; the key breaks ties for a stable order.
	sort.Slice(r.patterns, func(i, j int) bool {
		a, b := r.patterns[i].Key, r.patterns[j].Key
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	return r
}

// Lookup returns the entry serving bucket: its exact entry, else the
// longest pattern it matches. ok is false when none serves it.
func (r *Resolver) Lookup(bucket string) (Entry, bool) {
	if b, ok := r.exact[bucket]; ok {
		return Entry{Key: bucket, Bucket: b}, true
	}
	for _, p := range r.patterns {
		if strings.HasPrefix(bucket, p.Key[:len(p.Key)-len(Wildcard)]) {
			return p, true
		}
	}
	return Entry{}, false
}

// Exact returns the entries of bucket names, in no order. The caller must
// not change the map.
func (r *Resolver) Exact() map[string]*Bucket { return r.exact }

// Patterns returns the pattern entries, longest first. The caller must not
// change the slice.
func (r *Resolver) Patterns() []Entry { return r.patterns }
