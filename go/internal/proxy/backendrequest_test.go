package proxy

import (
	"context"
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
	if len(transport.sent.Header) != 0 || transport.sent.URL != nil {
		t.Fatalf("backend request not released after the response: %v %v", transport.sent.URL, transport.sent.Header)
	}
}

func TestBackendRequestReleasedClear(t *testing.T) {
	b := newBackendRequest()
	b.forwardHeaders(http.Header{"Content-Type": {"a/b"}, "X-Amz-Meta-K": {"v"}}, []string{"x-amz-meta-k"})
	b.setPayloadHash(string(sigv4.UnsignedPayload))
	b.reserveSignature()
	b.setURL(&forward{target: target{bucket: "data", escapedKey: "k"}, bucket: &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https"}}, backendHost{endpoint: "s3.example"})
	header := b.header
	b.release()
	// What the next request finds (no test here runs in parallel, so no
	// other Get takes b first).
	if len(header) != 0 || !reflect.DeepEqual(*b, backendRequest{header: header}) {
		t.Fatalf("a released request keeps %v %+v", header, *b)
	}
}

// TestBackendRequestKeepsNothingOfTheClients: the backend's request is
// built on a copy of the client's (for its context), then every exported
// field set anew. A client request with every field set must leave
// nothing of itself but the method and the context; a field a later Go
// adds fails here until request sets it.
func TestBackendRequestKeepsNothingOfTheClients(t *testing.T) {
	client := &http.Request{}
	v := reflect.ValueOf(client).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.CanSet() {
			f.Set(nonZero(t, f.Type()))
		}
	}
	type key struct{}
	client = client.WithContext(context.WithValue(context.Background(), key{}, "client"))
	b := newBackendRequest()
	defer b.release()
	got := b.request(client, "backend.example")
	want := &http.Request{Method: client.Method, URL: &b.url, Host: "backend.example", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: b.header}
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		if name := gv.Type().Field(i).Name; gv.Field(i).CanInterface() && !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("backend request's %s = %v, want %v", name, gv.Field(i), wv.Field(i))
		}
	}
	if got.Context().Value(key{}) != "client" {
		t.Errorf("backend request not in the client's context")
	}
	if got.URL != &b.url || len(b.header) != 0 {
		t.Errorf("backend request not on b's URL and header map")
	}
}

// nonZero is a value of type typ that is not its zero value.
func nonZero(t *testing.T, typ reflect.Type) reflect.Value {
	v := reflect.New(typ).Elem()
	switch typ.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(typ.Elem()))
	case reflect.Map:
		v.Set(reflect.MakeMap(typ))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(typ, 1, 1))
	case reflect.Func:
		v.Set(reflect.MakeFunc(typ, func([]reflect.Value) []reflect.Value { return nil }))
	case reflect.Chan:
		v.Set(reflect.MakeChan(reflect.ChanOf(reflect.BothDir, typ.Elem()), 0).Convert(typ)) // Cancel is receive-only
	case reflect.Interface: // Body
		v.Set(reflect.ValueOf(io.NopCloser(strings.NewReader("client body"))))
	default:
		t.Fatalf("no non-zero value for %v", typ)
	}
	return v
}
