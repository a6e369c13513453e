// Package h1 serves HTTP/1.1 on plain TCP listeners: the proxy's hot path.
//
// net/http's server costs about 15 µs of CPU per small request beyond the
// bare socket work, most of it in two places this package avoids: a
// background read armed and torn down around every request (to notice a
// client that goes away), and a 4 KiB write buffer that splits any
// response over about 3.7 KiB into two writes, two TCP segments and two
// wake-ups of the client. Here a response goes out in one write up to
// 32 KiB, a body of known length above that by the kernel (splice or
// sendfile through TCPConn.ReadFrom), and a request is watched for its
// client going away only once it has run for a second.
//
// A request head of the common shape is parsed here, into the request
// net/http's ReadRequest would return for it (head.go; FuzzParseHead holds
// the two to that), without its generic line reader and per-line strings;
// any other head is left to ReadRequest. What a request needs (the
// request, its URL, field values, bodies, context and response) is one
// allocation, its exchange (exchange.go), and its context registers with
// no context shared by other connections (context.go). Requests are
// checked as net/http's server checks them (Host, header names and values,
// protocol version, Expect), and what cannot be framed is refused with
// net/http's plain-text answers, so clients see the same behaviour. TLS
// listeners (HTTP/2 by ALPN) stay on net/http.
package h1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves Handler on the listeners given to Serve.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds the reading of a request's head, from the
	// connection's start or the head's first byte (0: no limit).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection (0: ReadHeaderTimeout).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's head; more gets 431 (0:
	// http.DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// Log receives handler panics and accept failures.
	Log *slog.Logger

	once     sync.Once
	epoch    time.Time // when the server started, for monotonicNow
	closing  atomic.Bool
	canceled atomic.Bool // Close canceled the contexts of the requests

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
}

func (s *Server) init() {
	s.once.Do(func() {
		s.epoch = time.Now()
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		if s.Log == nil {
			s.Log = slog.Default()
		}
	})
}

// monotonicNow is the time now for deadlines and durations, which go by
// the monotonic clock: time.Now reads the wall clock too, about 20 ns
// more on the machines measured, per request (the head's deadline; the
// close watch's overdue.Timer keeps its own epoch). Its wall clock
// reading is the epoch's plus the time since: not for display (Date
// reads time.Now).
func (s *Server) monotonicNow() time.Time {
	return s.epoch.Add(time.Since(s.epoch))
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

// Serve accepts connections on ln until Shutdown or Close, when it returns
// http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if !transientAcceptError(err) {
				return err
			}
			// Out of file descriptors, say: wait rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Log.Warn("accept failed; retrying", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := newConn(s, rwc)
		if !s.track(c) {
			_ = rwc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

func transientAcceptError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

// track registers a new connection, unless the server is closing.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// shutdownPoll is how often Shutdown looks for connections still busy.
const shutdownPoll = 5 * time.Millisecond

// Shutdown stops accepting, closes idle connections, and waits until the
// requests running finish (their connections close after the answer) or
// ctx ends, whose error it then returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closing.Store(true)
	err := s.closeListeners()
	tick := time.NewTicker(shutdownPoll)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops accepting, closes every connection at once and cancels the
// contexts of the requests running.
func (s *Server) Close() error {
	s.init()
	s.closing.Store(true)
	err := s.closeListeners()
	s.canceled.Store(true) // before the loads of running (see conn.handle)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.rwc.Close()
		if ctx := c.running.Load(); ctx != nil {
			ctx.cancel()
		}
	}
	return err
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for ln := range s.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		delete(s.listeners, ln)
	}
	return errors.Join(errs...)
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			_ = c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}
