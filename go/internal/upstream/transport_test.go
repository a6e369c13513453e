package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the connections it
// accepted.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func get(t *testing.T, tr *Transport, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s body: %v", url, err)
	}
	return resp, string(b)
}

func TestReusesConnections(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })
	tr := New(Options{})
	defer tr.Close()
	for i := 0; i < 5; i++ {
		if _, b := get(t, tr, srv.URL+"/k"); b != "ok /k" {
			t.Fatalf("body %q", b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1", n)
	}
}

func TestBodiesCarriedBothWays(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", r.Header.Get("Content-Length"))
		w.Write(append([]byte("got "), b...))
	})
	tr := New(Options{})
	defer tr.Close()
	body := strings.Repeat("0123456789", 100_000) // 1 MB: past every buffer
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/k", strings.NewReader(body))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if string(got) != "got "+body || resp.Header.Get("X-Len") != "1000000" {
		t.Fatalf("echo of %d bytes came back as %d (Content-Length %s)", len(body), len(got), resp.Header.Get("X-Len"))
	}
}

// A connection the backend closed while idle is noticed before reuse.
func TestIdleConnectionClosedByBackend(t *testing.T) {
	// A PUT finds out before it sends (the liveness check); a GET skips the
	// check and is sent again when the connection turns out closed.
	for _, method := range []string{http.MethodPut, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
			tr := New(Options{})
			defer tr.Close()
			get(t, tr, srv.URL)
			srv.CloseClientConnections()
			time.Sleep(20 * time.Millisecond) // let the FIN arrive
			var body io.Reader
			if method == http.MethodPut {
				body = strings.NewReader("a body cannot be sent twice")
			}
			req, _ := http.NewRequest(method, srv.URL, body)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("%s after the backend closed the idle connection: %v", method, err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
				t.Fatalf("body %q", b)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2", n)
			}
		})
	}
}

// A backend that closes the connection after every response without
// saying so: requests without a body are sent again on a new connection.
func TestRetriesBodilessRequestOnLostConnection(t *testing.T) {
	addr, accepted := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		// Read the next request, then drop the connection unanswered.
		http.ReadRequest(br)
	})
	tr := New(Options{})
	defer tr.Close()
	for i := 0; i < 3; i++ {
		if _, b := get(t, tr, "http://"+addr+"/"); b != "ok" {
			t.Fatalf("body %q", b)
		}
	}
	if n := accepted.Load(); n < 3 {
		t.Fatalf("%d connections for 3 requests on a backend that drops each after one answer", n)
	}
}

func TestPartlyReadBodyClosesConnection(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 1<<20)) })
	tr := New(Options{})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read after Close: %v, want an error that is not EOF", err)
	}
	get(t, tr, srv.URL)
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: a half-read response's connection must not be reused", n)
	}
}

func TestConnectionCloseIsHonoured(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	tr := New(Options{})
	defer tr.Close()
	get(t, tr, srv.URL)
	get(t, tr, srv.URL)
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestHeadAndNoContentReuse(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "100")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	tr := New(Options{})
	defer tr.Close()
	for _, method := range []string{http.MethodHead, http.MethodDelete, http.MethodHead} {
		req, _ := http.NewRequest(method, srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	tr := New(Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	_, err := tr.RoundTrip(req)
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
}

func TestCancelUnblocksBodyRead(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("part"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	tr := New(Options{})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cut-off body read to a clean end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the request did not unblock the body read")
	}
}

func TestUnreachableIsADialError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	tr := New(Options{})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	_, err := tr.RoundTrip(req)
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		t.Fatalf("err %v, want a dial error", err)
	}
}

func TestGarbageIsAnError(t *testing.T) {
	addr := oneConnection(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "SSH-2.0-OpenSSH\r\n\r\n")
		c.Close()
	})
	tr := New(Options{})
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", strings.NewReader("x"))
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("a non-HTTP answer was accepted")
	}
}

func TestInterimResponsesAreSkipped(t *testing.T) {
	addr := oneConnection(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
	})
	tr := New(Options{})
	defer tr.Close()
	if resp, b := get(t, tr, "http://"+addr+"/"); resp.StatusCode != 200 || b != "body" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

func TestTLSWithConnectTo(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.TLS.ServerName)
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tr := New(Options{
		TLS:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ConnectTo: map[string]string{"example.com:443": srv.Listener.Addr().String()},
	})
	defer tr.Close()
	// httptest's certificate is for example.com; connect_to reaches it.
	if _, b := get(t, tr, "https://bucket.example.com/k"); b != "bucket.example.com bucket.example.com" {
		t.Fatalf("backend saw Host and SNI %q", b)
	}
}

func TestRetiredTransportClosesReturnedConnections(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := New(Options{})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	io.ReadAll(resp.Body) // handed back after Close: closed, not pooled
	get(t, tr, srv.URL)
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.idle) != 0 {
		t.Fatalf("a retired transport pooled %d connection sets", len(tr.idle))
	}
}

// S3 refuses a bad upload at once, without reading its body, and closes
// the connection: the client must get that answer, not a write error.
func TestEarlyAnswerToAnUpload(t *testing.T) {
	addr := oneConnection(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c)) // the head only
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied")
		time.Sleep(100 * time.Millisecond)
		c.Close() // unread body: the kernel resets the connection
	})
	tr := New(Options{ResponseHeaderTimeout: 5 * time.Second})
	defer tr.Close()
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 8<<20)), slowReader{})
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", body)
	req.ContentLength = 8<<20 + 1
	resp, err := tr.RoundTrip(req)
	wantDenied(t, resp, err)
}

// wantDenied checks that the backend's early answer, a 403 "denied", is
// what RoundTrip returned.
func wantDenied(t *testing.T, resp *http.Response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("the backend's early answer was lost: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || string(b) != "denied" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// slowReader never ends on its own: a client still uploading.
type slowReader struct{}

func (slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	p[0] = 'y'
	return 1, nil
}

// A body that fails half-way (a client cut off, a bad chunk signature)
// ends the exchange at once: the backend, still waiting for the rest,
// sees the connection close, and the body's error is what RoundTrip says.
func TestFailingBodyAbortsAtOnce(t *testing.T) {
	closed := make(chan struct{})
	addr := oneConnection(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			io.Copy(io.Discard, req.Body) // waits for the rest of the body
		}
		close(closed)
	})
	tr := New(Options{})
	defer tr.Close()
	bodyErr := errors.New("chunk signature does not match")
	body := io.MultiReader(strings.NewReader("first part"), errReader{bodyErr})
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", body)
	req.ContentLength = 1 << 20
	start := time.Now()
	result := make(chan error, 1)
	go func() { _, err := tr.RoundTrip(req); result <- err }()
	var err error
	select {
	case err = <-result:
	case <-time.After(5 * time.Second):
		t.Fatal("RoundTrip still waits for the backend after the body failed")
	}
	// net/http wraps a body's read error without Unwrap: compare text.
	if err == nil || !strings.Contains(err.Error(), bodyErr.Error()) {
		t.Fatalf("err %v, want the body's error", err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend never saw the connection close")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %v", took)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// sink is an io.ReaderFrom, as a server's response writer is.
type sink struct{ bytes.Buffer }

func (s *sink) ReadFrom(r io.Reader) (int64, error) { return s.Buffer.ReadFrom(r) }

func TestWriteToMovesTheWholeBodyAndReuses(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: past the read buffer
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(payload) })
	tr := New(Options{})
	defer tr.Close()
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 { // part read by Read, the rest by WriteTo
			head := make([]byte, 1000)
			if _, err := io.ReadFull(resp.Body, head); err != nil {
				t.Fatal(err)
			}
		}
		var out sink
		n, err := io.Copy(&out, resp.Body)
		got := out.Bytes()
		if i == 1 {
			got = append(payload[:1000:1000], got...)
			n += 1000
		}
		if err != nil || n != int64(len(payload)) || !bytes.Equal(got, payload) {
			t.Fatalf("round %d: %d bytes, err %v, equal %v", i, n, err, bytes.Equal(got, payload))
		}
	}
	if c := conns.Load(); c != 1 {
		t.Fatalf("%d connections, want 1", c)
	}
}

// A small body that comes in a segment after its head is read like the
// head (the read buffer's path, not the socket's ReadFrom), whole, and the
// connection is reused; one cut short is still an error.
func TestWriteToASmallBodyThatComesLater(t *testing.T) {
	body := bytes.Repeat([]byte("small body "), 400) // 4,400 bytes, under the read buffer
	addr := oneConnection(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; i < 3; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
			time.Sleep(20 * time.Millisecond) // the head is read before the body is sent
			if i == 2 {
				c.Write(body[:1000])
				c.Close()
				return
			}
			c.Write(body)
		}
	})
	tr := New(Options{})
	defer tr.Close()
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("round %d: %v (the connection was not reused)", i, err)
		}
		var out sink
		n, err := io.Copy(&out, resp.Body)
		if i == 2 {
			if err == nil {
				t.Fatalf("a body cut at %d of %d bytes copied without an error", n, len(body))
			}
			break
		}
		if err != nil || !bytes.Equal(out.Bytes(), body) {
			t.Fatalf("round %d: %d bytes, err %v", i, n, err)
		}
	}
}

// A backend that sends more than its Content-Length after a body that
// came late, small (read through the read buffer) or large (from the
// socket itself): the extra bytes, a forged second response here, never
// answer the next request; the connection they came on is not reused.
func TestWriteToABodyWithBytesPastItsEnd(t *testing.T) {
	for _, size := range []int{4000, 64000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { bytesPastTheEnd(t, size) })
	}
}

func bytesPastTheEnd(t *testing.T, size int) {
	body := bytes.Repeat([]byte("b"), size)
	forged := "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
	var forgedSent atomic.Bool
	addr, accepted := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
			time.Sleep(20 * time.Millisecond) // the head is read before the body comes
			if forgedSent.CompareAndSwap(false, true) {
				c.Write(append(append([]byte{}, body...), forged...))
				continue
			}
			c.Write(body)
		}
	})
	tr := New(Options{})
	defer tr.Close()
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		var out sink
		if _, err := io.Copy(&out, resp.Body); err != nil || !bytes.Equal(out.Bytes(), body) {
			t.Fatalf("round %d: got %q (%d bytes), err %v; want the %d-byte body", i, out.Bytes()[:min(out.Len(), 64)], out.Len(), err, len(body))
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: the one with bytes past the body's end must not be reused", n)
	}
}

func TestWriteToReportsABodyCutShort(t *testing.T) {
	addr := oneConnection(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
		c.Write(make([]byte, 50000))
		c.Close()
	})
	tr := New(Options{})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	var out sink
	if n, err := io.Copy(&out, resp.Body); err == nil {
		t.Fatalf("a body cut at %d of 100000 bytes copied without an error", n)
	}
}

// oneConnection listens on a loopback port and runs serve on the first
// connection: a backend scripted byte by byte. It returns the address.
func oneConnection(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		if c, err := ln.Accept(); err == nil {
			serve(c)
		}
	}()
	return ln.Addr().String()
}

// dropsSecondRequest is a backend that answers the first request on each
// connection, then reads the next one and closes the connection without
// answering it, as a backend does that closes a kept-alive connection just
// as it is reused. It records every request line it read.
func dropsSecondRequest(t *testing.T) (addr string, seen func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var lines []string
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, r.Method+" "+r.URL.RequestURI())
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				r, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				record(r)
				io.Copy(io.Discard, r.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if r, err = http.ReadRequest(br); err == nil {
					record(r)
					io.Copy(io.Discard, r.Body)
				}
			}()
		}
	}()
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
}

// TestOnlyIdempotentRequestsAreReplayed: a request whose pooled connection
// the backend closes after reading it may have been acted on. Only an
// idempotent method (RFC 9110: GET, HEAD, PUT, DELETE, OPTIONS) without a
// body goes again on a new connection; a POST (a second
// CreateMultipartUpload, a second DeleteObjects) never does: the caller
// gets the error.
func TestOnlyIdempotentRequestsAreReplayed(t *testing.T) {
	cases := []struct {
		method, target string
		replay         bool
	}{
		{http.MethodPost, "/b/k?uploads", false},
		{http.MethodPost, "/b/k?restore", false},
		{"PATCH", "/b/k", false},
		{http.MethodGet, "/b/k", true},
		{http.MethodHead, "/b/k", true},
		{http.MethodDelete, "/b/k", true},
		{http.MethodPut, "/b/k", true}, // a copy: x-amz-copy-source, no body
		{http.MethodOptions, "/b/k", true},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			addr, seen := dropsSecondRequest(t)
			tr := New(Options{})
			defer tr.Close()
			get(t, tr, "http://"+addr+"/warm") // leaves one pooled connection
			req, _ := http.NewRequest(c.method, "http://"+addr+c.target, nil)
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			want := []string{"GET /warm", c.method + " " + c.target}
			if c.replay {
				want = append(want, c.method+" "+c.target)
				if err != nil {
					t.Fatalf("an idempotent request was not sent again: %v", err)
				}
			} else if err == nil || !connectionLost(err) {
				t.Fatalf("got %v, want the lost connection's error", err)
			}
			time.Sleep(20 * time.Millisecond) // the backend records asynchronously
			if got := seen(); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("the backend received %q, want %q", got, want)
			}
		})
	}
}

// A streamed body whose write finds the backend gone (it answered early
// and closed) is a failed write to the backend, not a failed body: the
// answer may still be read. net/http reports both as a body error, so the
// connection itself must tell them apart. (Under load the write can fail
// before the reading goroutine has parsed the answer; treating it as a
// body error then closed the connection and lost the answer: a 502.)
func TestWriteToAResetConnectionIsABackendWriteFailure(t *testing.T) {
	gone := make(chan struct{})
	addr := oneConnection(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c)) // the head only
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		c.Close() // unread body: the kernel resets the connection
		close(gone)
	})
	tr := New(Options{})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", afterReader{gone, strings.NewReader("refused")})
	req.ContentLength = 7
	c, err := tr.dial(context.Background(), poolKey{req.URL.Scheme, req.URL.Host}, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = tr.write(c, req)
	if err == nil {
		t.Fatal("the write to a reset connection succeeded")
	}
	if !c.writeFailed() {
		t.Fatalf("a failed write to the backend counted as a failed body: %v", err)
	}
}

// afterReader reads r a byte at a time once wait is closed, slowly
// enough for the backend's reset (answering the first byte) to arrive
// before the next.
type afterReader struct {
	wait <-chan struct{}
	r    io.Reader
}

func (a afterReader) Read(p []byte) (int, error) {
	<-a.wait
	time.Sleep(20 * time.Millisecond)
	return a.r.Read(p[:1])
}

// A chunked answer (with a trailer) and one whose head is larger than the
// read buffer (read by http.ReadResponse) leave the connection reusable.
func TestChunkedAndLargeHeadsReuse(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/large" {
			w.Header().Set("X-Large", strings.Repeat("v", readBufferSize+1000))
			io.WriteString(w, "large head")
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		for _, piece := range []string{"chunked ", "in ", "pieces"} {
			io.WriteString(w, piece)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "1")
	})
	tr := New(Options{})
	defer tr.Close()
	for i := 0; i < 2; i++ {
		resp, b := get(t, tr, srv.URL+"/chunked")
		if b != "chunked in pieces" || resp.ContentLength != -1 || resp.Trailer.Get("X-Sum") != "1" {
			t.Fatalf("body %q, length %d, trailer %v", b, resp.ContentLength, resp.Trailer)
		}
		resp, b = get(t, tr, srv.URL+"/large")
		if b != "large head" || len(resp.Header.Get("X-Large")) != readBufferSize+1000 {
			t.Fatalf("body %q, header of %d bytes", b, len(resp.Header.Get("X-Large")))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// BenchmarkRoundTrip4KiB: a GET of 4 KiB from a backend that costs next to
// nothing, on loopback: the transport's own cost per request.
func BenchmarkRoundTrip4KiB(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nContent-Type: application/octet-stream\r\n" +
		"ETag: \"0123456789abcdef\"\r\nLast-Modified: Sun, 06 Dec 2026 12:00:00 GMT\r\nx-amz-request-id: 0123456789\r\n\r\n" +
		strings.Repeat("x", 4096))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	// As the proxy's server builds it: a response-header timeout is
	// always set (300 s by default).
	tr := New(Options{ResponseHeaderTimeout: 300 * time.Second})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/b/k", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	var out sink
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		out.Reset()
		if _, err := io.Copy(&out, resp.Body); err != nil || out.Len() != 4096 {
			b.Fatalf("%d bytes, %v", out.Len(), err)
		}
		resp.Body.Close()
	}
}

// The liveness check of a pooled connection, made before every request
// with a body, allocates nothing.
func TestLivenessCheckAllocations(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := New(Options{})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	c, err := tr.dial(context.Background(), poolKey{req.URL.Scheme, req.URL.Host}, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	allocs := testing.AllocsPerRun(100, func() {
		if !c.open() {
			t.Fatal("an open connection failed the liveness check")
		}
	})
	if allocs > 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

// Streamed uploads that the backend reads whole reuse their connection,
// however the writing goroutine and the answer's reader are scheduled:
// the answer can be read before the writer has reported its success.
func TestStreamedUploadsReuse(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, strings.Repeat("k", int(n%7)))
	})
	tr := New(Options{ResponseHeaderTimeout: 5 * time.Second})
	defer tr.Close()
	const uploads = 200
	payload := bytes.Repeat([]byte("u"), maxSmallBody+1) // above the bound: streamed
	for i := range uploads {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/b/k", bytes.NewReader(payload))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for %d sequential streamed uploads, want 1", n, uploads)
	}
}
