package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/object-storage-proxy/osp/internal/config"
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

// TestLostConnectionNeverRepeatsAPost: a backend that reads a request on a
// kept-alive connection and closes it unanswered may have acted on it. A
// GET is sent again; a POST ?uploads (CreateMultipartUpload) is not: the
// client gets 502 BadGateway and the backend saw it once.
func TestLostConnectionNeverRepeatsAPost(t *testing.T) {
	for _, c := range []struct {
		method, target string
		status         int
		times          int
	}{
		{"POST", "/data/k?uploads", http.StatusBadGateway, 1},
		{"GET", "/data/k", http.StatusOK, 2},
	} {
		t.Run(c.method, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var mu sync.Mutex
			var got []string
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer conn.Close()
						br := bufio.NewReader(conn)
						for i := 0; i < 2; i++ {
							r, err := http.ReadRequest(br)
							if err != nil {
								return
							}
							mu.Lock()
							got = append(got, r.Method+" "+r.URL.RequestURI())
							mu.Unlock()
							if i == 1 {
								return // read, maybe acted on, never answered
							}
							io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
						}
					}()
				}
			}()
			port := ln.Addr().(*net.TCPAddr).Port
			h := newTestHandler(t, map[string]*config.Bucket{"data": {Host: "127.0.0.1", Port: port, Scheme: "http",
				AddressingStyle: config.PathStyle, Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}}, nil)
			if resp := do(t, h, "GET", "/data/warm", "", nil, clientSecret); resp.StatusCode != 200 {
				t.Fatalf("warm-up: %d", resp.StatusCode)
			}
			resp := do(t, h, c.method, c.target, "", nil, clientSecret)
			if resp.StatusCode != c.status {
				t.Fatalf("got %d, want %d", resp.StatusCode, c.status)
			}
			if c.status == http.StatusBadGateway && errorCode(t, resp) != "BadGateway" {
				t.Fatalf("got %s, want BadGateway", errorCode(t, resp))
			}
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, line := range got {
				if strings.HasPrefix(line, c.method+" /data/k") {
					n++
				}
			}
			if n != c.times {
				t.Fatalf("the backend received %q: %s sent %d times, want %d", got, c.method, n, c.times)
			}
		})
	}
}
