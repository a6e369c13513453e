package s3op

import (
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkName: naming runs on every request.
func BenchmarkName(b *testing.B) {
	r := Request{Method: http.MethodGet, Bucket: "b", Key: "k", Query: url.Values{"versionId": {"v"}}, Header: http.Header{"Host": {"h"}}}
	for b.Loop() {
		if Name(r) != "GetObject" {
			b.Fatal("not GetObject")
		}
	}
}
