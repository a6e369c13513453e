package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/upstream"
)

// TestRetryOn5xxOnlyWhatMayBeRepeated: the proxy's retry of a backend's
// 500/503 stays within the rule the transport's replay follows: an
// idempotent method, no body. Never a POST (CreateMultipartUpload,
// DeleteObjects), never a body.
func TestRetryOn5xxOnlyWhatMayBeRepeated(t *testing.T) {
	for _, method := range []string{"GET", "HEAD", "DELETE", "PUT", "POST", "PATCH", "OPTIONS"} {
		for _, withBody := range []bool{false, true} {
			var body io.Reader
			if withBody {
				body = strings.NewReader("x")
			}
			r, _ := http.NewRequest(method, "http://proxy/b/k?uploads", body)
			got := retryOn5xx(r, &forward{})
			if got && (withBody || !upstream.Idempotent(method)) {
				t.Errorf("%s (body %v) is retried", method, withBody)
			}
			if want := !withBody && (method == "GET" || method == "HEAD" || method == "DELETE"); got != want {
				t.Errorf("%s (body %v): retried %v, want %v", method, withBody, got, want)
			}
		}
	}
	// A body the proxy planned (an aws-chunked upload) is never retried.
	r, _ := http.NewRequest("GET", "http://proxy/b/k", nil)
	if retryOn5xx(r, &forward{body: &upstreamBody{}}) {
		t.Error("a planned body is retried")
	}
}
