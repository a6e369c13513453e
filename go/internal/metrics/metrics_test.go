package metrics

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStatusLabel(t *testing.T) {
	m := New()
	for _, status := range []int{0, 100, 200, 499, 599, 600, 1000, -1} {
		if got := m.statusLabel(status); got != strconv.Itoa(status) {
			t.Fatalf("statusLabel(%d) = %q", status, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { m.Request("data", "GetObject", 200, 0, 4096, time.Millisecond) }); n != 0 {
		t.Fatalf("recording a request allocates %v times", n)
	}
}

// Request adds to the series of its labels, whether it finds them
// looked up already or not.
func TestRequestSeries(t *testing.T) {
	m := New()
	m.Request("data", "GetObject", 200, 1, 4096, time.Millisecond)
	m.Request("data", "GetObject", 200, 2, 4096, time.Millisecond)
	m.Request("data", "PutObject", 200, 4096, 0, time.Millisecond)
	m.Request("other", "GetObject", 404, 0, 100, time.Millisecond)
	m.Backend("data", time.Millisecond)
	m.Backend("data", time.Millisecond)
	m.Backend("other", time.Millisecond)
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`osp_requests_total{bucket="data",operation="GetObject",status="200"} 2`,
		`osp_requests_total{bucket="data",operation="PutObject",status="200"} 1`,
		`osp_requests_total{bucket="other",operation="GetObject",status="404"} 1`,
		`osp_request_bytes_total{bucket="data"} 4099`,
		`osp_response_bytes_total{bucket="data"} 8192`,
		`osp_response_bytes_total{bucket="other"} 100`,
		`osp_request_duration_seconds_count{operation="GetObject"} 3`,
		`osp_request_duration_seconds_count{operation="PutObject"} 1`,
		`osp_backend_duration_seconds_count{bucket="data"} 2`,
		`osp_backend_duration_seconds_count{bucket="other"} 1`,
	} {
		if !strings.Contains(w.Body.String(), "\n"+line+"\n") {
			t.Errorf("no line %s", line)
		}
	}
}
