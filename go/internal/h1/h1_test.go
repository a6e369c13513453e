package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ioTimeout bounds every client read or write, so a broken server fails a
// test instead of hanging it.
const ioTimeout = 2 * time.Second

// newServer returns a Server with the settings most tests use.
func newServer(h http.HandlerFunc) *Server {
	return &Server{
		Handler:           h,
		MaxHeaderBytes:    64 << 10,
		ReadHeaderTimeout: 2 * time.Second,
		IdleTimeout:       2 * time.Second,
		Log:               slog.New(slog.DiscardHandler),
	}
}

// serve runs srv on a fresh loopback listener, wrapped by wrap if not nil,
// and returns the address and what Serve returns.
func serve(t testing.TB, srv *Server, wrap func(net.Listener) net.Listener) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return addr, served
}

// start serves h with newServer's settings and returns the address.
func start(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	addr, _ := serve(t, newServer(h), nil)
	return addr
}

// client is a raw HTTP/1.x client on one connection.
type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// send writes raw request bytes.
func (c *client) send(raw string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatalf("writing request: %v", err)
	}
}

// sendAsync writes raw bytes in the background, for requests the server
// may refuse before reading them all; write errors are ignored.
func (c *client) sendAsync(raw string) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	go func() { _, _ = io.WriteString(c.conn, raw) }()
}

// response reads one answer to a request of the given method, with all of
// its body.
func (c *client) response(method string) (*http.Response, string) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response to %s: %v", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading body of response to %s: %v", method, err)
	}
	return resp, string(body)
}

// expect reads one answer and checks its status and body.
func (c *client) expect(method string, status int, body string) *http.Response {
	c.t.Helper()
	resp, got := c.response(method)
	if resp.StatusCode != status || got != body {
		c.t.Fatalf("%s: got %d %q, want %d %q", method, resp.StatusCode, got, status, body)
	}
	return resp
}

// expectClosed checks that the server closed the connection: the next
// read gives io.EOF.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	var b [1]byte
	n, err := c.br.Read(b[:])
	switch {
	case n > 0:
		c.t.Fatalf("connection not closed: read %q", b[:n])
	case !errors.Is(err, io.EOF):
		c.t.Fatalf("connection not closed: read error %v, want io.EOF", err)
	}
}

// readToClose reads until the server closes the connection, accepting a
// reset (the server may give up on a client still writing), and returns
// what came before.
func (c *client) readToClose() []byte {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(c.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("connection not closed: read %q, then %v", b, err)
	}
	return b
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n"
}

// echoPath answers with the request's path and a Content-Length.
func echoPath(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", strconv.Itoa(len(r.URL.Path)))
	io.WriteString(w, r.URL.Path)
}

// waitCtx blocks until the request's context ends, or fallback passes, and
// reports when the context ended (zero if it did not).
func waitCtx(r *http.Request, fallback time.Duration) time.Time {
	select {
	case <-r.Context().Done():
		return time.Now()
	case <-time.After(fallback):
		return time.Time{}
	}
}

// Two requests on one connection are both answered, the second on the
// same connection.
func TestKeepAlive(t *testing.T) {
	remotes := make(chan string, 2)
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		remotes <- r.RemoteAddr
		echoPath(w, r)
	})
	c := dial(t, addr)
	c.send(get("/one"))
	if resp := c.expect("GET", 200, "/one"); resp.Close {
		t.Fatal("first answer closes the connection")
	}
	c.send(get("/two"))
	c.expect("GET", 200, "/two")
	local := c.conn.LocalAddr().String()
	for i := range 2 {
		if from := <-remotes; from != local {
			t.Fatalf("request %d came from %s, want %s", i+1, from, local)
		}
	}
}

// countingConn counts the Write calls on a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type countingListener struct {
	net.Listener
	conns chan *countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.conns <- cc
	return cc, nil
}

// A small answer of known length (head and a 4 KiB body) leaves in one
// write, hence one TCP segment.
func TestSmallAnswerOneWrite(t *testing.T) {
	body := strings.Repeat("x", 4<<10)
	ln := &countingListener{conns: make(chan *countingConn, 1)}
	addr, _ := serve(t, newServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}), func(l net.Listener) net.Listener { ln.Listener = l; return ln })
	c := dial(t, addr)
	c.send(get("/"))
	c.expect("GET", 200, body)
	if n := (<-ln.conns).writes.Load(); n != 1 {
		t.Fatalf("answer took %d writes, want 1", n)
	}
}

// A body written without Content-Length goes chunked; an answer without a
// body gets Content-Length: 0.
func TestFraming(t *testing.T) {
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, "hello, ")
			io.WriteString(w, "world")
		}
	})
	c := dial(t, addr)
	c.send(get("/chunked"))
	resp := c.expect("GET", 200, "hello, world")
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
		t.Errorf("chunked: Transfer-Encoding %q, Content-Length %d; want chunked, none", resp.TransferEncoding, resp.ContentLength)
	}
	c.send(get("/empty"))
	resp = c.expect("GET", 200, "")
	if cl := resp.Header.Get("Content-Length"); cl != "0" || resp.TransferEncoding != nil {
		t.Errorf("empty: Content-Length %q, Transfer-Encoding %q; want 0, none", cl, resp.TransferEncoding)
	}
}

// The answer to HEAD keeps the handler's Content-Length but sends no body:
// the next pipelined answer follows the head directly.
func TestHead(t *testing.T) {
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "0123456789")
			return
		}
		echoPath(w, r)
	})
	c := dial(t, addr)
	c.send("HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n" + get("/next"))
	resp := c.expect("HEAD", 200, "")
	if resp.ContentLength != 10 {
		t.Errorf("HEAD: Content-Length %d, want 10", resp.ContentLength)
	}
	if next, err := c.br.Peek(len("HTTP/1.1 200")); err != nil || string(next) != "HTTP/1.1 200" {
		t.Fatalf("after the HEAD answer: %q, %v; want the next answer", next, err)
	}
	c.expect("GET", 200, "/next")
}

// Requests sent together are answered in order.
func TestPipelining(t *testing.T) {
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
			return
		}
		echoPath(w, r)
	})
	c := dial(t, addr)
	c.send(get("/1") + "POST /2 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\nbody" + get("/3"))
	c.expect("GET", 200, "/1")
	c.expect("POST", 200, "body")
	c.expect("GET", 200, "/3")
}

// Expect: 100-continue gets 100 Continue when the handler reads the body;
// a handler that refuses without reading gets no 100, and the connection
// (whose body never came) is closed after the answer.
func TestExpectContinue(t *testing.T) {
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/forbidden" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	head := func(path string) string {
		return "PUT " + path + " HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
	}

	t.Run("read", func(t *testing.T) {
		c := dial(t, addr)
		c.send(head("/echo"))
		c.expect("PUT", 100, "")
		c.send("hello")
		c.expect("PUT", 200, "hello")
	})
	t.Run("refused", func(t *testing.T) {
		c := dial(t, addr)
		c.send(head("/forbidden"))
		resp := c.expect("PUT", 403, "")
		if !resp.Close {
			t.Errorf("403 answer says Connection %q, want close", resp.Header.Get("Connection"))
		}
		c.expectClosed()
	})
}

// What net/http's server refuses is refused with its plain-text answer,
// the connection is closed, and the handler is never called.
func TestRefusals(t *testing.T) {
	var called atomic.Int32
	srv := newServer(func(w http.ResponseWriter, r *http.Request) { called.Add(1) })
	srv.MaxHeaderBytes = 4096
	addr, _ := serve(t, srv, nil)
	bigHead := "GET / HTTP/1.1\r\nHost: example.com\r\n" +
		strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 100) + "\r\n"

	for _, tc := range []struct {
		name, raw string
		status    int
		body      string // net/http's; "" for 417, which is not plain text there
	}{
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, "400 Bad Request: missing required Host header"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "400 Bad Request"},
		{"head too large", bigHead, 431, "431 Request Header Fields Too Large"},
		{"chunked, identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501, "Unsupported transfer encoding"},
		{"two Transfer-Encodings", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 501, "Unsupported transfer encoding"},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "505 HTTP Version Not Supported: unsupported protocol version"},
		{"unknown Expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n", 417, ""},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, "400 Bad Request"},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, "400 Bad Request"},
		{"malformed request line", "GET /\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			c.sendAsync(tc.raw)
			resp, body := c.response("GET")
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 417 && body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if !resp.Close {
				t.Errorf("Connection %q, want close", resp.Header.Get("Connection"))
			}
			c.expectClosed()
		})
	}
	if n := called.Load(); n != 0 {
		t.Fatalf("handler called %d times", n)
	}
}

// A body the handler leaves unread is drained if short, keeping the
// connection; a long rest closes the connection after the answer.
func TestUnreadBody(t *testing.T) {
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	post := func(length int) string {
		return "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: " + strconv.Itoa(length) + "\r\n\r\n"
	}

	t.Run("short", func(t *testing.T) {
		c := dial(t, addr)
		c.send(post(1<<10) + strings.Repeat("b", 1<<10))
		c.expect("POST", 200, "ok")
		c.send(get("/again"))
		c.expect("GET", 200, "ok")
	})
	// The client goes on sending its 10 MiB, as it must.
	t.Run("long, rest arriving", func(t *testing.T) {
		c := dial(t, addr)
		c.sendAsync(post(10<<20) + strings.Repeat("b", 10<<20))
		resp := c.expect("POST", 200, "ok")
		if !resp.Close {
			t.Errorf("answer says Connection %q, want close", resp.Header.Get("Connection"))
		}
		c.expectClosed()
	})
	// The client sends 64 KiB of 10 MiB and waits for the answer.
	t.Run("long, rest withheld", func(t *testing.T) {
		c := dial(t, addr)
		c.send(post(10<<20) + strings.Repeat("b", 64<<10))
		resp := c.expect("POST", 200, "ok")
		if !resp.Close {
			t.Errorf("answer says Connection %q, want close", resp.Header.Get("Connection"))
		}
		c.expectClosed()
	})
	// The client sends 100 bytes of 1 KiB and stops: the server waits
	// drainTimeout for the rest, then closes rather than hang on.
	t.Run("short, rest withheld", func(t *testing.T) {
		c := dial(t, addr)
		c.send(post(1<<10) + strings.Repeat("b", 100))
		c.expect("POST", 200, "ok")
		start := time.Now()
		_ = c.conn.SetReadDeadline(start.Add(drainTimeout + ioTimeout))
		if n, err := c.br.Read(make([]byte, 1)); n > 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("after the answer: read %d bytes, %v; want the connection closed", n, err)
		}
		if waited := time.Since(start); waited < drainTimeout/2 || waited > drainTimeout+time.Second {
			t.Fatalf("closed after %v, want about drainTimeout (%v)", waited, drainTimeout)
		}
	})
}

// Shutdown closes idle connections at once, lets a running request finish
// with its full answer (saying Connection: close), then returns nil, and
// Serve returns http.ErrServerClosed.
func TestShutdown(t *testing.T) {
	running, release := make(chan struct{}), make(chan struct{})
	srv := newServer(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(running)
			<-release
		}
		echoPath(w, r)
	})
	addr, served := serve(t, srv, nil)

	idle := dial(t, addr)
	idle.send(get("/idle"))
	idle.expect("GET", 200, "/idle")
	busy := dial(t, addr)
	busy.send(get("/slow"))
	<-running

	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(context.Background()) }()
	idle.expectClosed() // Shutdown has begun
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a request runs", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	resp := busy.expect("GET", 200, "/slow")
	if !resp.Close {
		t.Errorf("answer during Shutdown says Connection %q, want close", resp.Header.Get("Connection"))
	}
	busy.expectClosed()
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return")
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
	}
}

// Close cancels the contexts of the requests running.
func TestCloseCancelsRequests(t *testing.T) {
	running, done := make(chan struct{}), make(chan time.Time, 1)
	srv := newServer(func(w http.ResponseWriter, r *http.Request) {
		close(running)
		done <- waitCtx(r, 5*time.Second)
	})
	addr, served := serve(t, srv, nil)
	c := dial(t, addr)
	c.send(get("/"))
	<-running
	closed := time.Now()
	srv.Close()
	if at := <-done; at.IsZero() || at.Sub(closed) > 500*time.Millisecond {
		t.Fatalf("request context not cancelled by Close (cancelled after %v)", at.Sub(closed))
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
	}
}

// A client that goes away while its request (without a body) runs has the
// request's context cancelled, about watchDelay after the request began.
func TestClientGoneCancelsRequest(t *testing.T) {
	type span struct{ start, end time.Time }
	done := make(chan span, 1)
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		begin := time.Now()
		done <- span{begin, waitCtx(r, 5*time.Second)}
	})
	c := dial(t, addr)
	c.send(get("/"))
	time.Sleep(50 * time.Millisecond)
	c.conn.Close()
	select {
	case s := <-done:
		if s.end.IsZero() {
			t.Fatal("request context not cancelled after the client went away")
		}
		if took := s.end.Sub(s.start); took > watchDelay+time.Second {
			t.Fatalf("request context cancelled %v after the request began, want within %v", took, watchDelay+time.Second)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("handler did not return")
	}
}

// IdleTimeout closes a kept-alive connection that sends nothing more.
func TestIdleTimeout(t *testing.T) {
	srv := newServer(echoPath)
	srv.IdleTimeout = 200 * time.Millisecond
	addr, _ := serve(t, srv, nil)
	c := dial(t, addr)
	c.send(get("/"))
	c.expect("GET", 200, "/")
	begin := time.Now()
	c.expectClosed()
	if took := time.Since(begin); took < 150*time.Millisecond || took > time.Second {
		t.Fatalf("idle connection closed after %v, want about 200ms", took)
	}
}

// ReadHeaderTimeout closes a connection whose head trickles in, without
// calling the handler. Like net/http's server, h1 may first answer 400:
// http.ReadRequest takes the partial line before the timeout for a whole one.
func TestReadHeaderTimeout(t *testing.T) {
	var called atomic.Int32
	srv := newServer(func(w http.ResponseWriter, r *http.Request) { called.Add(1) })
	srv.ReadHeaderTimeout = 300 * time.Millisecond
	addr, _ := serve(t, srv, nil)
	c := dial(t, addr)
	head := "GET / HTTP/1.1\r\nHost: example.com\r\nX-Slow: " + strings.Repeat("x", 100) // never complete
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := range len(head) {
			if _, err := c.conn.Write([]byte{head[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	begin := time.Now()
	if got := c.readToClose(); len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) {
		t.Errorf("trickling connection got %q, want nothing or 400", got)
	}
	if took := time.Since(begin); took < 250*time.Millisecond || took > time.Second {
		t.Fatalf("trickling connection closed after %v, want about 300ms", took)
	}
	if n := called.Load(); n != 0 {
		t.Fatalf("handler called %d times", n)
	}
}

// A handler that panics loses its connection; the server goes on.
func TestHandlerPanic(t *testing.T) {
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		echoPath(w, r)
	})
	c := dial(t, addr)
	c.send(get("/panic"))
	c.expectClosed()
	c = dial(t, addr)
	c.send(get("/ok"))
	c.expect("GET", 200, "/ok")
}

// HTTP/1.0 closes after the answer, unless it asks for keep-alive and the
// answer has a length.
func TestHTTP10(t *testing.T) {
	addr := start(t, echoPath)

	t.Run("close", func(t *testing.T) {
		c := dial(t, addr)
		c.send("GET /a HTTP/1.0\r\n\r\n")
		c.expect("GET", 200, "/a")
		c.expectClosed()
	})
	t.Run("keep-alive", func(t *testing.T) {
		c := dial(t, addr)
		req := "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
		c.send(req)
		resp := c.expect("GET", 200, "/b")
		if got := resp.Header.Get("Connection"); got != "keep-alive" {
			t.Fatalf("Connection %q, want keep-alive", got)
		}
		c.send(req)
		c.expect("GET", 200, "/b")
	})
}

// A large body of known length copied from a TCP connection (the
// ReadFrom path) arrives complete and intact.
func TestReadFromLargeBody(t *testing.T) {
	const size = 8 << 20
	pattern := make([]byte, size)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>10)
	}
	srcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srcLn.Close() })
	go func() {
		src, err := srcLn.Accept()
		if err != nil {
			return
		}
		defer src.Close()
		src.Write(pattern)
	}()

	copied := make(chan error, 1)
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		src, err := net.Dial("tcp", srcLn.Addr().String())
		if err != nil {
			copied <- err
			return
		}
		defer src.Close()
		w.Header().Set("Content-Length", strconv.Itoa(size))
		n, err := io.Copy(w, &io.LimitedReader{R: src.(*net.TCPConn), N: size})
		if err == nil && n != size {
			err = fmt.Errorf("copied %d bytes, want %d", n, size)
		}
		copied <- err
	})
	c := dial(t, addr)
	c.send(get("/"))
	resp, body := c.response("GET")
	if err := <-copied; err != nil {
		t.Fatalf("handler: %v", err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("got %d with Content-Length %d, want 200 with %d", resp.StatusCode, resp.ContentLength, size)
	}
	if !bytes.Equal([]byte(body), pattern) {
		t.Fatalf("body of %d bytes differs from the %d sent", len(body), size)
	}
}

// A handler can bound its body reads with ResponseController: a client
// stalling mid-body makes the read fail with os.ErrDeadlineExceeded.
func TestResponseControllerReadDeadline(t *testing.T) {
	readErr := make(chan error, 1)
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			readErr <- err
			return
		}
		_, err := io.ReadAll(r.Body)
		readErr <- err
		w.WriteHeader(http.StatusRequestTimeout)
	})
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n0123456789")
	c.expect("POST", http.StatusRequestTimeout, "")
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("body read: %v, want os.ErrDeadlineExceeded", err)
	}
	c.expectClosed()
}

// Every answer has one Date field: the server's, current, unless the
// handler set its own.
func TestDate(t *testing.T) {
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			w.Header().Set("Date", "Fri, 24 May 2013 00:00:00 GMT")
		}
		echoPath(w, r)
	})
	c := dial(t, addr)
	for _, tc := range []struct{ path, want string }{{"/", ""}, {"/own", "Fri, 24 May 2013 00:00:00 GMT"}, {"/", ""}} {
		c.send(get(tc.path))
		resp := c.expect("GET", 200, tc.path)
		dates := resp.Header.Values("Date")
		if len(dates) != 1 {
			t.Fatalf("%s: Date fields %q, want one", tc.path, dates)
		}
		if tc.want != "" {
			if dates[0] != tc.want {
				t.Errorf("%s: Date %q, want the handler's %q", tc.path, dates[0], tc.want)
			}
			continue
		}
		if d, err := http.ParseTime(dates[0]); err != nil || time.Since(d).Abs() > 2*time.Second {
			t.Errorf("%s: Date %q (%v), want now", tc.path, dates[0], err)
		}
	}
}

// A connection reuses its watch from request to request: a request
// answered before the watch began; one begun after the timer was set, and
// watched from its own start on, while a pipelined request arrived; the
// timer firing between requests; one watched until it returned; and then
// one whose client goes away, which is cancelled.
func TestClientGoneAfterWatchedRequests(t *testing.T) {
	cancelled := make(chan time.Duration, 1)
	addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(watchDelay + 300*time.Millisecond)
		case "/wait":
			begin := time.Now()
			if end := waitCtx(r, 5*time.Second); !end.IsZero() {
				cancelled <- end.Sub(begin)
			}
			close(cancelled)
			return
		}
		if r.Context().Err() != nil {
			t.Errorf("%s: context ended before the handler returned: %v", r.URL.Path, r.Context().Err())
		}
		echoPath(w, r)
	})
	c := dial(t, addr)
	c.send(get("/fast"))
	c.expect("GET", 200, "/fast")
	time.Sleep(300 * time.Millisecond)
	begin := time.Now()
	c.send(get("/slow"))
	time.Sleep(watchDelay + 100*time.Millisecond) // the watch is reading
	c.send(get("/next"))
	resp, _ := c.response("GET")
	if took := time.Since(begin); resp.StatusCode != 200 || took < watchDelay+300*time.Millisecond {
		t.Fatalf("/slow: %s after %v", resp.Status, took)
	}
	c.expect("GET", 200, "/next")
	time.Sleep(watchDelay + 200*time.Millisecond) // the timer fires between requests
	c.send(get("/slow"))
	c.expect("GET", 200, "/slow")
	c.send(get("/wait"))
	time.Sleep(50 * time.Millisecond)
	c.conn.Close()
	select {
	case took, ok := <-cancelled:
		if !ok {
			t.Fatal("request context not cancelled after the client went away")
		}
		if took > watchDelay+time.Second {
			t.Fatalf("request context cancelled %v after the request began, want within %v", took, watchDelay+time.Second)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("handler did not return")
	}
}

// A request without a body that runs past the head's read deadline and
// past watchDelay, its client still there, is not taken for one whose
// client went away: the close watch reads without the head's deadline.
func TestSlowRequestOutlivesHeadDeadline(t *testing.T) {
	cancelled := make(chan bool, 2)
	srv := newServer(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			cancelled <- !waitCtx(r, watchDelay+500*time.Millisecond).IsZero()
		}
		io.WriteString(w, "done")
	})
	srv.ReadHeaderTimeout = 200 * time.Millisecond
	addr, _ := serve(t, srv, nil)
	c := dial(t, addr)
	c.send(get("/slow"))
	c.expect("GET", http.StatusOK, "done")
	if <-cancelled {
		t.Fatal("request context cancelled with the client still there")
	}
	c.send(get("/")) // the connection still serves
	c.expect("GET", http.StatusOK, "done")
}
