package s3op

import (
	"net/http"
	"net/url"
	"testing"
)

// knownOperations is every name Name may return.
func knownOperations() map[string]bool {
	known := map[string]bool{
		"Unknown": true, "ListBuckets": true, "ListObjects": true, "ListObjectsV2": true, "HeadBucket": true,
		"CreateBucket": true, "DeleteBucket": true, "GetObject": true, "HeadObject": true, "PutObject": true,
		"CopyObject": true, "DeleteObject": true, "UploadPart": true, "UploadPartCopy": true,
		"CreateMultipartUpload": true, "CompleteMultipartUpload": true, "AbortMultipartUpload": true, "ListParts": true,
	}
	for _, table := range []map[string]byMethod{bucketSubresources, objectSubresources} {
		for _, m := range table {
			for _, op := range []string{m.get, m.put, m.del, m.post, m.head} {
				if op != "" {
					known[op] = true
				}
			}
		}
	}
	return known
}

// bucketLevel is true for the operations on a bucket (or on no bucket).
func bucketLevel(op string) bool {
	for _, m := range bucketSubresources {
		if op == m.get || op == m.put || op == m.del || op == m.post || op == m.head {
			return true
		}
	}
	switch op {
	case "ListBuckets", "ListObjects", "ListObjectsV2", "HeadBucket", "CreateBucket", "DeleteBucket":
		return true
	}
	return false
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
	known := knownOperations()
	f.Fuzz(func(t *testing.T, method, bucket, key, rawQuery string, copySource bool) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return // the handler's url.Values drops bad pairs the same way; keep inputs simple
		}
		r := Request{Method: method, Bucket: bucket, Key: key, Query: q, CopySource: copySource}
		op := Name(r)
		if !known[op] {
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
			if op != "Unknown" && !bucketLevel(op) {
				t.Fatalf("%s /%s?%s (no key) named the object operation %q", method, bucket, rawQuery, op)
			}
		default:
			if op != "Unknown" && bucketLevel(op) {
				t.Fatalf("%s /%s/%s?%s named the bucket operation %q", method, bucket, key, rawQuery, op)
			}
		}
		for i := 0; i < 16; i++ {
			if again := Name(r); again != op {
				t.Fatalf("%s /%s/%s?%s named %q, then %q: the answer depends on map order", method, bucket, key, rawQuery, op, again)
			}
		}
	})
}
