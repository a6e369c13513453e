package h1

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// deadlineCounter counts the read deadlines set on its connections.
type deadlineCounter struct {
	net.Listener
	set *atomic.Int32
}

func (l deadlineCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, l.set}, nil
}

type countedConn struct {
	net.Conn
	set *atomic.Int32
}

func (c countedConn) SetReadDeadline(t time.Time) error {
	c.set.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// A connection busy with short requests without a body keeps the head's
// read deadline for many requests (readDeadline), rather than setting it
// once or twice per request.
func TestBusyConnectionKeepsItsHeadDeadline(t *testing.T) {
	var set atomic.Int32
	srv := newServer(echoPath)
	addr, _ := serve(t, srv, func(ln net.Listener) net.Listener { return deadlineCounter{ln, &set} })
	c := dial(t, addr)
	const requests = 100
	for range requests {
		c.send(get("/"))
		c.expect("GET", 200, "/")
	}
	if n := set.Load(); n > requests/10 {
		t.Fatalf("%d read deadlines set for %d requests, want a few", n, requests)
	}
}
