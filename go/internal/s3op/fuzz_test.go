package s3op

import (
	"net/http"
	"net/url"
	"testing"
)

// knownOperations is every name Name may return, each with whether it
// is an operation on a bucket (or on no bucket).
func knownOperations() map[string]bool {
	known := map[string]bool{Unknown: false}
	for _, op := range operations {
		known[op.name] = op.scope != objectScope
	}
	return known
}

// FuzzName feeds arbitrary methods, targets and queries to the operation
// classifier whose answer authorization callables decide on. It must never
// panic, always name a known operation, never call an object request a
// bucket operation or the reverse, and give the same answer every time
// for the same request: an answer that changed between calls would let a
// validator approve one operation while the backend performs another.
func FuzzName(f *testing.F) {
	f.Add("GET", "b", "", "list-type=2&prefix=a/", false)
	f.Add("PUT", "b", "k", "partNumber=1&uploadId=x", true)
	f.Add("POST", "b", "k", "uploads", false)
	f.Add("GET", "b", "", "acl&tagging", false)
	f.Add("PUT", "b", "k", "tagging&acl&retention", false)
	f.Add("DELETE", "b", "", "cors&website&policy", false)
	f.Add("GET", "", "", "", false)
	f.Add("PATCH", "b", "k", "x-id=GetObject", false)
	f.Add("OPTIONS", "", "k", "", true)
	f.Add("GET", "b", "", "inventory&list-type=2", false)
	f.Add("PUT", "b", "", "accelerate", false)
	f.Add("DELETE", "b", "", "analytics&id=x", false)
	f.Add("GET", "b", "k", "uploadId=x&partNumber=1", false)
	known := knownOperations()
	f.Fuzz(func(t *testing.T, method, bucket, key, rawQuery string, copySource bool) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return // the handler's url.Values drops bad pairs the same way; keep inputs simple
		}
		h := http.Header{}
		if copySource {
			h.Set("X-Amz-Copy-Source", "")
		}
		r := Request{Method: method, Bucket: bucket, Key: key, Query: q, Header: h}
		op := Name(r)
		if _, ok := known[op]; !ok {
			t.Fatalf("%s /%s/%s?%s: unknown operation %q", method, bucket, key, rawQuery, op)
		}
		switch {
		case bucket == "":
			if op != "ListBuckets" && op != "Unknown" {
				t.Fatalf("%s with no bucket named %q", method, op)
			}
			if op == "ListBuckets" && method != http.MethodGet {
				t.Fatalf("%s with no bucket named ListBuckets", method)
			}
		case key == "":
			if op != "Unknown" && !known[op] {
				t.Fatalf("%s /%s?%s (no key) named the object operation %q", method, bucket, rawQuery, op)
			}
		default:
			if op != "Unknown" && known[op] {
				t.Fatalf("%s /%s/%s?%s named the bucket operation %q", method, bucket, key, rawQuery, op)
			}
		}
		if op != Unknown {
			// What the validator is told is what S3 runs: the operation has
			// every query key it requires, and takes every subresource key
			// the request carries.
			named := findOperation(t, op)
			for _, p := range named.query {
				if !q.Has(p.key) || (p.value != "" && q.Get(p.key) != p.value) {
					t.Fatalf("%s /%s/%s?%s named %s without its %s=%s", method, bucket, key, rawQuery, op, p.key, p.value)
				}
			}
			for k := range q {
				if subresources[k] && !contains(named.takes, k) {
					t.Fatalf("%s /%s/%s?%s named %s, which does not take ?%s", method, bucket, key, rawQuery, op, k)
				}
			}
		}
		for i := 0; i < 16; i++ {
			if again := Name(r); again != op {
				t.Fatalf("%s /%s/%s?%s named %q, then %q: the answer depends on map order", method, bucket, key, rawQuery, op, again)
			}
		}
	})
}

func findOperation(t *testing.T, name string) *operation {
	for i := range operations {
		if operations[i].name == name {
			return &operations[i]
		}
	}
	t.Fatalf("%s is not in the table", name)
	return nil
}
