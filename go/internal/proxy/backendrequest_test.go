package proxy

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// holdingTransport answers with a body that checks, when it is closed,
// that the request it answers is still whole: a pooled backend request
// must not be cleared or reused while its response is open.
type holdingTransport struct {
	t    *testing.T
	sent *http.Request
}

func (h *holdingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.sent = r
	return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: 2, Request: r,
		Body: &checkOnClose{Reader: strings.NewReader("ok"), check: func() {
			if r.Header.Get("Authorization") == "" || r.Header.Get("X-Amz-Content-Sha256") == "" || r.URL.Path != "/data/k" {
				h.t.Errorf("backend request changed before its response was closed: %v %v", r.URL, r.Header)
			}
		}}}, nil
}

type checkOnClose struct {
	io.Reader
	check func()
}

func (c *checkOnClose) Close() error { c.check(); return nil }

func TestBackendRequestReleasedOnlyAfterTheResponse(t *testing.T) {
	transport := &holdingTransport{t: t}
	bucket := &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: config.PathStyle,
		Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}
	h := handlerWith(map[string]*config.Bucket{"data": bucket}, nil, transport)
	resp := do(t, h, "GET", "/data/k", "", nil, clientSecret)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Released once the answer was relayed: cleared, so that the pool
	// keeps nothing of it.
	if len(transport.sent.Header) != 0 || transport.sent.URL.Path != "" {
		t.Fatalf("backend request not released after the response: %v %v", transport.sent.URL, transport.sent.Header)
	}
}

func TestBackendRequestReleasedClear(t *testing.T) {
	b := newBackendRequest()
	b.forwardHeaders(http.Header{"Content-Type": {"a/b"}, "X-Amz-Meta-K": {"v"}}, []string{"x-amz-meta-k"})
	b.setPayloadHash(string(sigv4.UnsignedPayload))
	b.reserveSignature()
	b.setURL(&forward{target: target{bucket: "data", escapedKey: "k"}, bucket: &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https"}}, "s3.example")
	header := b.header
	b.release()
	// What the next request finds (no test here runs in parallel, so no
	// other Get takes b first).
	if len(header) != 0 || !reflect.DeepEqual(*b, backendRequest{header: header}) {
		t.Fatalf("a released request keeps %v %+v", header, *b)
	}
}
