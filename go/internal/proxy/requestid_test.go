package proxy

import (
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/accesslog"
	"github.com/object-storage-proxy/osp/internal/config"
)

// TestRequestIDsStay: a request id is a view of its exchange's digits
// (requestID.view); the ids of earlier requests keep their digits while
// later requests run, each id is new, and the access log names the id
// the client got.
func TestRequestIDsStay(t *testing.T) {
	bucket := &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: config.PathStyle,
		Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}
	h := handlerWith(map[string]*config.Bucket{"data": bucket}, nil, nullTransport{})
	var log strings.Builder
	h.access = accesslog.New("text", &log, &log)
	seen := map[string]bool{}
	var ids, copies []string // the ids as the client got them, and copies made then
	for range 200 {
		resp := do(t, h, "GET", "/data/k", "", nil, clientSecret)
		id := resp.Header.Get("X-Amz-Request-Id")
		if len(id) != 16 || strings.Trim(id, "0123456789ABCDEF") != "" {
			t.Fatalf("request id %q", id)
		}
		if seen[id] {
			t.Fatalf("request id %q given twice", id)
		}
		seen[strings.Clone(id)] = true
		ids, copies = append(ids, id), append(copies, strings.Clone(id))
		if !strings.Contains(log.String(), "request_id="+id) {
			t.Fatalf("the access log does not name request id %q", id)
		}
	}
	for i, id := range ids {
		if id != copies[i] {
			t.Fatalf("request id %q changed to %q after later requests", copies[i], id)
		}
	}
}

// TestAccessLineWriters: an answered request's access line goes to the
// access log's answered writer (which may batch it), a refused one's to
// its refused writer (at once), each whole.
func TestAccessLineWriters(t *testing.T) {
	bucket := &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: config.PathStyle,
		Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}
	h := handlerWith(map[string]*config.Bucket{"data": bucket}, nil, nullTransport{})
	var answered, refused strings.Builder
	h.access = accesslog.New("text", &answered, &refused)
	do(t, h, "GET", "/data/k", "", nil, clientSecret)
	if got := answered.String(); !strings.HasPrefix(got, "time=") || !strings.Contains(got, " status=200 ") || strings.Count(got, "\n") != 1 || refused.Len() != 0 {
		t.Fatalf("answered request: answered writer %q, refused writer %q", got, refused.String())
	}
	answered.Reset()
	do(t, h, "GET", "/data/k", "", nil, "not the client's secret")
	if got := refused.String(); !strings.Contains(got, " status=403 ") || !strings.Contains(got, " error_code=SignatureDoesNotMatch") || strings.Count(got, "\n") != 1 || answered.Len() != 0 {
		t.Fatalf("refused request: refused writer %q, answered writer %q", got, answered.String())
	}
}
