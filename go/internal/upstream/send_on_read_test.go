package upstream

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// halfClosingBackend answers one request per connection, then shuts down
// its sending side without saying so, and keeps reading: a request sent
// on that connection is never answered, and only the end tells.
func halfClosingBackend(t *testing.T) (addr string, accepted *atomic.Int64) {
	return rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		_ = c.(*net.TCPConn).CloseWrite()
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
		}
	})
}

// rawBackend serves each connection it accepts with serve, on a goroutine
// of its own, and closes it after; accepted counts the connections.
func rawBackend(t *testing.T, serve func(net.Conn)) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

// A connection idle for longer than sendOnReadIdle tries its read before
// it waits, and sees the end a backend sent while it was idle: a GET goes
// again at once on a new connection, without waiting for the response
// head's timeout.
func TestLongIdleConnectionSeesTheEnd(t *testing.T) {
	addr, accepted := halfClosingBackend(t)
	tr := New(Options{ResponseHeaderTimeout: 10 * time.Second})
	defer tr.Close()
	get(t, tr, "http://"+addr+"/")
	time.Sleep(sendOnReadIdle + 100*time.Millisecond)
	start := time.Now()
	if _, b := get(t, tr, "http://"+addr+"/"); b != "ok" {
		t.Fatalf("body %q", b)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the GET took %v: it waited on the half-closed connection", took)
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A connection reused at once sends its request on the read, and does
// not see an end that came before: against a backend that half-closes
// after each answer, the wait ends at the response head's timeout. This
// pins the one case sendOnReadIdle leaves (send_on_read.go).
func TestBusyConnectionWaitsOnAHalfClose(t *testing.T) {
	addr, _ := halfClosingBackend(t)
	tr := New(Options{ResponseHeaderTimeout: 300 * time.Millisecond})
	defer tr.Close()
	get(t, tr, "http://"+addr+"/")
	time.Sleep(20 * time.Millisecond) // the end arrives
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("answered on a connection the backend half-closed")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("after %v: %v (want the head's timeout)", time.Since(start), err)
	}
}
