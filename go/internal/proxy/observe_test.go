package proxy

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"unsafe"
)

// Every answer carries the proxy's request id; a backend's own (its first
// value) moves to X-Osp-Backend-Request-Id.
func TestResponseWriterRequestIDs(t *testing.T) {
	for _, c := range []struct {
		backend, wantMoved []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"PROXYID"}, nil}, // the proxy's own, already there
		{[]string{"B1"}, []string{"B1"}},
		{[]string{"B1", "B2"}, []string{"B1"}},
	} {
		rec := httptest.NewRecorder()
		if c.backend != nil {
			rec.Header()["X-Amz-Request-Id"] = c.backend
		}
		w := &responseWriter{ResponseWriter: rec, requestID: [1]string{"PROXYID"}}
		w.WriteHeader(http.StatusOK)
		h := rec.Result().Header
		if got := h["X-Amz-Request-Id"]; !reflect.DeepEqual(got, []string{"PROXYID"}) {
			t.Errorf("backend id %q: X-Amz-Request-Id %q", c.backend, got)
		}
		if got := h["X-Osp-Backend-Request-Id"]; !reflect.DeepEqual(got, c.wantMoved) {
			t.Errorf("backend id %q: X-Osp-Backend-Request-Id %q, want %q", c.backend, got, c.wantMoved)
		}
	}
}

// An exchange is the one allocation of a request's own state: it stays
// in the 576-byte size class (568 bytes and the allocator's 8-byte header
// of an object with pointers over 512 bytes); one more field costs every
// request 64 bytes.
func TestExchangeFitsItsSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(exchange{}); size > 568 {
		t.Errorf("exchange is %d bytes, over 568", size)
	}
}
