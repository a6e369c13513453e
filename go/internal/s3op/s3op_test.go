package s3op

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	cases := []struct {
		method, bucket, key, query string
		header                     string // one header name present, or ""
		want                       string
	}{
		{"GET", "", "", "", "", "ListBuckets"},
		{"GET", "b", "", "list-type=2&prefix=a/", "", "ListObjectsV2"},
		{"GET", "b", "", "prefix=a/", "", "ListObjects"},
		{"GET", "b", "", "uploads", "", "ListMultipartUploads"},
		{"GET", "b", "", "location", "", "GetBucketLocation"},
		{"POST", "b", "", "delete", "", "DeleteObjects"},
		{"HEAD", "b", "", "", "", "HeadBucket"},
		{"PUT", "b", "", "", "", "CreateBucket"},
		{"DELETE", "b", "", "", "", "DeleteBucket"},
		{"GET", "b", "k", "", "", "GetObject"},
		{"GET", "b", "k", "partNumber=2&versionId=v", "", "GetObject"},
		{"GET", "b", "k", "x-id=GetObject", "", "GetObject"},
		{"HEAD", "b", "k", "", "", "HeadObject"},
		{"PUT", "b", "k", "", "", "PutObject"},
		{"PUT", "b", "k", "", "X-Amz-Copy-Source", "CopyObject"},
		{"DELETE", "b", "k", "", "", "DeleteObject"},
		{"POST", "b", "k", "uploads", "", "CreateMultipartUpload"},
		{"PUT", "b", "k", "partNumber=1&uploadId=x", "", "UploadPart"},
		{"PUT", "b", "k", "partNumber=1&uploadId=x", "X-Amz-Copy-Source", "UploadPartCopy"},
		{"POST", "b", "k", "uploadId=x", "", "CompleteMultipartUpload"},
		{"DELETE", "b", "k", "uploadId=x", "", "AbortMultipartUpload"},
		{"GET", "b", "k", "uploadId=x", "", "ListParts"},
		{"GET", "b", "k", "tagging", "", "GetObjectTagging"},
		{"PUT", "b", "k", "tagging", "", "PutObjectTagging"},
		{"PUT", "b", "", "tagging", "", "PutBucketTagging"},
		{"PATCH", "b", "k", "", "", "Unknown"},
		// Issue 12, item 8: these were guessed as the plainer operation.
		{"GET", "b", "", "inventory&list-type=2", "", "ListBucketInventoryConfigurations"},
		{"PUT", "b", "", "accelerate", "", "PutBucketAccelerateConfiguration"},
		{"DELETE", "b", "", "analytics&id=x", "", "DeleteBucketAnalyticsConfiguration"},
		{"GET", "b", "", "analytics", "", "ListBucketAnalyticsConfigurations"},
		{"GET", "b", "", "analytics&id=x", "", "GetBucketAnalyticsConfiguration"},
		// Ambiguous or nothing: Unknown.
		{"GET", "b", "", "acl&tagging", "", "Unknown"},
		{"PUT", "b", "k", "tagging", "X-Amz-Copy-Source", "Unknown"},
		{"GET", "b", "k", "uploadId=x&tagging", "", "Unknown"},
		{"GET", "b", "", "list-type=2&list-type=1", "", "Unknown"},
		{"GET", "b", "", "acl&acl", "", "Unknown"},
		{"POST", "b", "", "", "", "Unknown"},
		{"POST", "b", "k", "select", "", "Unknown"},
		{"PUT", "", "", "", "", "Unknown"},
		{"GET", "", "k", "", "", "Unknown"},
		{"GET", "", "", "acl", "", "Unknown"},
		{"OPTIONS", "b", "k", "", "", "Unknown"},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		h := http.Header{}
		if c.header != "" {
			h[c.header] = []string{""} // present, even empty
		}
		if got := Name(Request{Method: c.method, Bucket: c.bucket, Key: c.key, Query: q, Header: h}); got != c.want {
			t.Errorf("%s /%s/%s?%s %s = %s, want %s", c.method, c.bucket, c.key, c.query, c.header, got, c.want)
		}
	}
}

// modelOperation is one entry of testdata/operations.json, the extract of
// botocore's S3 model the table is generated from.
type modelOperation struct {
	Name            string   `json:"name"`
	Method          string   `json:"method"`
	RequestURI      string   `json:"requestUri"`
	RequiredQuery   []string `json:"requiredQuery"`
	OptionalQuery   []string `json:"optionalQuery"`
	RequiredHeaders []string `json:"requiredHeaders"`
}

func loadModel(t testing.TB) []modelOperation {
	t.Helper()
	data, err := os.ReadFile("testdata/operations.json")
	if err != nil {
		t.Fatal(err)
	}
	var ops []modelOperation
	if err := json.Unmarshal(data, &ops); err != nil {
		t.Fatal(err)
	}
	if len(ops) < 100 {
		t.Fatalf("the extract holds %d operations; botocore's model has over 100", len(ops))
	}
	return ops
}

// requestOf builds the request an SDK sends for op: its request URI's
// bucket, key and query, a value for each required query member and each
// required header. extra adds query parameters.
func requestOf(op modelOperation, extra url.Values) Request {
	path, rawQuery, _ := strings.Cut(op.RequestURI, "?")
	r := Request{Method: op.Method, Query: url.Values{}, Header: http.Header{}}
	switch path {
	case "/{Bucket}":
		r.Bucket = "bkt"
	case "/{Bucket}/{Key+}":
		r.Bucket, r.Key = "bkt", "dir/key"
	}
	if rawQuery != "" {
		for pair := range strings.SplitSeq(rawQuery, "&") {
			k, v, _ := strings.Cut(pair, "=")
			r.Query.Set(k, v)
		}
	}
	for _, k := range op.RequiredQuery {
		r.Query.Set(k, "v1")
	}
	for _, h := range op.RequiredHeaders {
		r.Header.Set(h, "src/key")
	}
	for k, vs := range extra {
		r.Query[k] = vs
	}
	return r
}

// TestModel: every operation of botocore's S3 model is named as itself
// from the request an SDK sends for it, with or without its optional query
// parameters, except the few the table leaves out, which get the name the
// generator documents.
func TestModel(t *testing.T) {
	for _, op := range loadModel(t) {
		want := op.Name
		if instead, ok := excluded[op.Name]; ok {
			want = instead
		}
		if got := Name(requestOf(op, nil)); got != want {
			t.Errorf("%s %s (required query %v, headers %v) named %s, want %s", op.Method, op.RequestURI, op.RequiredQuery, op.RequiredHeaders, got, want)
		}
		optional := url.Values{}
		for _, k := range op.OptionalQuery {
			optional.Set(k, "1")
		}
		if got := Name(requestOf(op, optional)); got != want {
			t.Errorf("%s %s with its optional query %v named %s, want %s", op.Method, op.RequestURI, op.OptionalQuery, got, want)
		}
	}
}

// TestModelExtraSubresource: adding another operation's subresource key to
// any operation's request never names an operation that does not take it.
func TestModelExtraSubresource(t *testing.T) {
	for _, op := range loadModel(t) {
		if _, ok := excluded[op.Name]; ok {
			continue
		}
		for sub := range subresources {
			r := requestOf(op, nil)
			if r.Query.Has(sub) {
				continue
			}
			r.Query.Set(sub, "")
			got := Name(r)
			if got == Unknown {
				continue
			}
			named := findOperation(t, got)
			if !contains(named.takes, sub) {
				t.Errorf("%s with ?%s named %s, which does not take %s", op.Name, sub, got, sub)
			}
		}
	}
}

func TestIsListing(t *testing.T) {
	for _, op := range operations {
		want := op.name == "ListObjects" || op.name == "ListObjectsV2" || op.name == "ListObjectVersions" || op.name == "ListMultipartUploads"
		if IsListing(op.name) != want {
			t.Errorf("IsListing(%s) = %v", op.name, !want)
		}
	}
}
