package upstream

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A response head's deadline left set after a small response (see
// head_deadline.go) cuts nothing short later: not the liveness check of
// the next upload once it has passed, not a body that arrives after it,
// not a streamed upload; and the next head's wait is bounded anew.
func TestHeadDeadlineLeftSetCutsNothingShort(t *testing.T) {
	const timeout = 100 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/slow-body": // the rest of the body after the deadline would have passed
			w.Header().Set("Content-Length", "8")
			io.WriteString(w, "slow")
			w.(http.Flusher).Flush()
			time.Sleep(2 * timeout)
			io.WriteString(w, "body")
		case "/never":
			<-release
		default:
			io.WriteString(w, "ok")
		}
	})
	tr := New(Options{ResponseHeaderTimeout: timeout})
	defer tr.Close()
	leaveDeadline := func(passed bool) {
		t.Helper()
		if _, b := get(t, tr, srv.URL+"/small"); b != "ok" {
			t.Fatalf("body %q", b)
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, stack := range tr.idle {
			if len(*stack) != 1 || !(*stack)[0].headDeadline.IsSet() {
				t.Fatal("a small response's head deadline was cleared")
			}
		}
		if passed {
			time.Sleep(2 * timeout)
		}
	}
	send := func(method, path string, body io.Reader) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, body)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s body: %v", method, path, err)
		}
		return string(b)
	}

	leaveDeadline(true)
	if b := send(http.MethodPut, "/small-upload", strings.NewReader("data")); b != "ok" { // checked for liveness first
		t.Fatalf("small upload: body %q", b)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	leaveDeadline(false)
	// An upload that takes longer than what is left of the deadline: its
	// answer is read while it is written.
	upload := io.MultiReader(bytes.NewReader(make([]byte, 4*maxSmallBody)), pausedEnd{2 * timeout})
	if b := send(http.MethodPut, "/streamed-upload", upload); b != "ok" {
		t.Fatalf("streamed upload: body %q", b)
	}
	// (Whether that connection is reused depends on which comes first, the
	// end of the write or the end of the answer.)
	leaveDeadline(true)
	before := conns.Load()
	if _, b := get(t, tr, srv.URL+"/slow-body"); b != "slowbody" {
		t.Fatalf("slow body: %q", b)
	}
	if n := conns.Load(); n != before {
		t.Fatalf("%d connections, want %d", n, before)
	}

	leaveDeadline(false)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/never", nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if took := time.Since(start); took < timeout || took > 20*timeout {
		t.Fatalf("timed out after %v, want %v", took, timeout)
	}
	if !strings.Contains(err.Error(), "read response") {
		t.Fatalf("err %v, want one reading the response", err)
	}
}

// pausedEnd ends a body after a pause.
type pausedEnd struct{ pause time.Duration }

func (r pausedEnd) Read([]byte) (int, error) {
	time.Sleep(r.pause)
	return 0, io.EOF
}
