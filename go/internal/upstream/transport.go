// Package upstream is the proxy's HTTP/1.1 client to backends: kept-alive
// connections pooled per address, and each request written and its
// response read on the caller's own goroutine.
//
// net/http's Transport hands every request to the two goroutines it runs
// per connection (one writes, one reads) and back again. For the small
// requests that dominate S3 traffic those hand-offs were a quarter of the
// proxy's CPU (BenchmarkLoopbackGET4KiB in internal/proxy). Requests are
// written (request_writer.go) and response heads read
// (response_reader.go) as net/http does, without its generic machinery.
// Only a large upload, or one of unknown length, is written by a goroutine
// of its own while its answer is read (sendWithBody); a small one is read
// whole first and sent with its head (small_body.go).
package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/object-storage-proxy/osp/internal/overdue"
	"github.com/object-storage-proxy/osp/internal/readdeadline"
	"github.com/object-storage-proxy/osp/internal/sockio"
)

const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	// MaxIdlePerHost bounds the kept-alive connections to one backend
	// address; more concurrent requests open more, closed after use.
	MaxIdlePerHost = 256
	// IdleTimeout closes a connection unused this long.
	IdleTimeout = 90 * time.Second
	// Buffers per connection: a response head and a small object arrive in
	// one read; larger bodies bypass the buffer.
	readBufferSize  = 32 << 10
	writeBufferSize = 8 << 10
)

// Options configure a Transport.
type Options struct {
	TLS *tls.Config // for https backends; the server name is set per host
	// ConnectTo maps a backend "host:port" (and its virtual-hosted
	// "bucket.host:port" names) to the address actually dialled.
	ConnectTo map[string]string
	// ResponseHeaderTimeout bounds the wait for a response's headers after
	// the request is sent; 0 means no bound.
	ResponseHeaderTimeout time.Duration
}

// Transport is an http.RoundTripper for HTTP/1.1 backends. It never
// decompresses, follows no redirect and uses no environment proxy.
type Transport struct {
	opts   Options
	dialer net.Dialer

	mu sync.Mutex
	// idle holds each address's idle connections, most recent last,
	// through a pointer: taking one and handing one back look the key up
	// once. An emptied stack stays until prune removes it.
	idle    map[poolKey]*[]*conn
	closed  bool
	janitor *time.Timer // prunes idle connections while there are any
}

// New returns a Transport.
func New(opts Options) *Transport {
	if opts.TLS == nil {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &Transport{
		opts:   opts,
		dialer: net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		idle:   map[poolKey]*[]*conn{},
	}
}

// conn is one connection to a backend.
type conn struct {
	net.Conn
	key        poolKey
	raw        syscall.RawConn // the TCP socket, for the liveness check
	br         *bufio.Reader
	bw         *bufio.Writer
	src        socketReader  // under br: sends bw's request on its first read (send_on_read.go)
	sock       *socketWriter // under bw: remembers a failed write
	idleSince  time.Time
	abort      func()                // unblocks the pending read and write: the request's context ended
	cancel     cancelWatch           // hooks abort to a long exchange's context (cancel_watch.go)
	peekOnce   func(fd uintptr) bool // c.peek
	peeked     bool                  // the last liveness check found the connection open
	sendOnRead bool                  // new, or idle for less than sendOnReadIdle (send_on_read.go)
	// headDeadline: a response head's read deadline may still be set
	// (head_deadline.go).
	headDeadline readdeadline.Deadline
}

// writeFailed reports that a write to the backend's socket failed (the
// backend closed or reset the connection), as opposed to the request body
// failing while it was read: net/http reports both as a body error
// (requestBodyReadError, without Unwrap), so only the socket can tell.
func (c *conn) writeFailed() bool { return c.sock.err != nil }

// RoundTrip sends req on a pooled or new connection and returns the
// response, whose body must be read to its end (the connection is then
// reused) or closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key := poolKey{req.URL.Scheme, req.URL.Host}
	// A small body is read whole first, and sent with the head.
	read, isSmall, err := readSmallBody(req)
	if err != nil {
		return nil, fmt.Errorf("send request to %s: %w", key, err)
	}
	var small *smallBody
	if isSmall {
		small = &read
		defer read.release() // sent (or not at all) once RoundTrip returns
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil { // the client is gone already: nothing is sent
			return nil, err
		}
		c, reused, err := t.get(ctx, key, req.URL, !replayable(req))
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, c, req, small)
		if err == nil {
			return resp, nil
		}
		_ = c.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		// A kept-alive connection can be closed by the backend just as it
		// is reused. The backend may have read the request and acted on it
		// first, so only a request that may be repeated goes again on a new
		// connection: never a POST (a second CreateMultipartUpload).
		if reused && attempt == 0 && replayable(req) && connectionLost(err) {
			continue
		}
		return nil, err
	}
}

// exchange writes req on c, with its body read ahead if small is not nil,
// and reads the response head. The response body hands c back to the pool
// when read to its end.
func (t *Transport) exchange(ctx context.Context, c *conn, req *http.Request, small *smallBody) (*http.Response, error) {
	if small == nil && hasBody(req) {
		// Before the hook, whose abort the clearing would undo.
		c.clearHeadDeadline() // sendWithBody's head wait starts once the upload is written
	}
	// Cancelling the request unblocks whatever read or write is pending
	// on the connection, once the exchange has run for hookDelay.
	c.watch(ctx)
	var (
		into    = new(response) // the response's memory, body included
		resp    *http.Response
		f       frame
		err     error
		written <-chan error
		sent    = true // the whole request went out
	)
	switch {
	case !hasBody(req):
		resp, f, err = t.sendHead(c, req, into)
	case small != nil:
		resp, f, sent, err = t.sendSmall(c, req, small, into)
	default:
		resp, f, written, err = t.sendWithBody(c, req, into)
	}
	if err != nil {
		c.unwatch()
		return nil, err
	}
	if ctx.Err() != nil { // cancelled before the hook was registered, or while the read deadline was cleared
		c.unwatch()
		_ = c.Close()
		if written != nil {
			<-written
		}
		return nil, ctx.Err()
	}
	b := &into.body
	*b = body{frame: f, t: t, c: c, written: written, reusable: sent && !resp.Close && !req.Close}
	if f.kind == noBody {
		b.finish(true) // HEAD, 204, 304: done already
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

func hasBody(req *http.Request) bool { return req.Body != nil && req.Body != http.NoBody }

// replayable says req can go again on a new connection if its pooled one
// turns out closed (see RoundTrip): a request without a body (one cannot
// be read twice) whose method is idempotent. Such a request skips the
// liveness check of a pooled connection, a system call per request on the
// hot path; any other gets the check, which narrows (but cannot close) the
// window in which the backend closes the connection under it.
func replayable(req *http.Request) bool {
	return Idempotent(req.Method) && !hasBody(req)
}

// Idempotent reports whether RFC 9110 (9.2.2) lets a request with this
// method be sent again: sending it twice has the effect of sending it
// once. POST and PATCH are not.
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// sendHead sends a request without a body and reads the response head.
func (t *Transport) sendHead(c *conn, req *http.Request, into *response) (*http.Response, frame, error) {
	writes := c.sock.writes
	if err := writeRequest(c.bw, req); err != nil {
		return nil, frame{}, fmt.Errorf("send request to %s: %w", c.key, err)
	}
	if err := c.send(writes); err != nil {
		return nil, frame{}, fmt.Errorf("send request to %s: %w", c.key, err)
	}
	if t.opts.ResponseHeaderTimeout > 0 {
		c.awaitHead(t.opts.ResponseHeaderTimeout)
	}
	resp, f, err := readResponse(c, req, into)
	if err != nil && c.sendFailed() {
		return nil, frame{}, fmt.Errorf("send request to %s: %w", c.key, c.sock.err)
	}
	c.endHeadWait(&f)
	return resp, f, err
}

// sendWithBody writes the request on another goroutine while it reads the
// response head (a body of unknown length or above maxSmallBody; smaller
// ones go by sendSmall): a backend may answer before it has read the whole body
// (S3 refuses a bad request at once) and close the connection, and that
// answer, not the failed write, is what the client must get. written
// delivers the outcome of the write; the connection is reusable only if it
// succeeded.
func (t *Transport) sendWithBody(c *conn, req *http.Request, into *response) (*http.Response, frame, <-chan error, error) {
	var (
		mu       sync.Mutex
		answered bool
	)
	written := make(chan error, 1)
	go func() {
		err := t.write(c, req)
		mu.Lock()
		switch {
		case err == nil:
			// The wait for the answer starts when the request is out.
			if !answered && t.opts.ResponseHeaderTimeout > 0 {
				_ = c.SetReadDeadline(time.Now().Add(t.opts.ResponseHeaderTimeout))
			}
		case c.writeFailed():
			// The backend stopped reading; an answer it sent first may
			// still be on its way.
			if !answered {
				_ = c.SetReadDeadline(time.Now().Add(earlyAnswerGrace))
			}
		default:
			// The client's body failed: the backend must see the request
			// cut off, and nothing it answers matters.
			_ = c.Close()
		}
		mu.Unlock()
		written <- err
	}()
	resp, f, err := readResponse(c, req, into)
	mu.Lock()
	answered = true
	if t.opts.ResponseHeaderTimeout > 0 {
		_ = c.SetReadDeadline(time.Time{})
	}
	mu.Unlock()
	if err != nil {
		_ = c.Close() // unblocks the write
		if werr := <-written; werr != nil {
			return nil, frame{}, nil, werr // the cause: the client's body failed, or the backend went away
		}
		return nil, frame{}, nil, err
	}
	return resp, f, written, nil
}

func (t *Transport) write(c *conn, req *http.Request) error {
	if err := writeRequest(c.bw, req); err != nil {
		return fmt.Errorf("send request to %s: %w", c.key, err)
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("send request to %s: %w", c.key, err)
	}
	return nil
}

// readResponse reads a response head, skipping 1xx interim responses.
func readResponse(c *conn, req *http.Request, into *response) (*http.Response, frame, error) {
	for {
		resp, f, err := readResponseHead(c.br, req, into)
		if err != nil {
			return nil, frame{}, fmt.Errorf("read response from %s: %w", c.key, err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, f, nil
		}
	}
}

// earlyAnswerGrace is how long an answer may take to arrive after the
// backend stopped reading an upload.
const earlyAnswerGrace = 2 * time.Second

// connectionLost reports an error of a connection the backend closed
// before answering.
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// get returns an idle connection to key that is still open, or dials one.
func (t *Transport) get(ctx context.Context, key poolKey, u *url.URL, checkOpen bool) (*conn, bool, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		stack := t.idle[key]
		if stack == nil || len(*stack) == 0 {
			t.mu.Unlock()
			break
		}
		last := len(*stack) - 1
		c := (*stack)[last]
		(*stack)[last], *stack = nil, (*stack)[:last]
		t.mu.Unlock()
		idle := now.Sub(c.idleSince)
		if idle < IdleTimeout && c.br.Buffered() == 0 && (!checkOpen || c.open()) {
			c.sendOnRead = idle < sendOnReadIdle
			return c, true, nil
		}
		_ = c.Close()
	}
	c, err := t.dial(ctx, key, u)
	return c, false, err
}

// open checks, without blocking, that the backend has not closed an idle
// connection (or sent something unasked on it): one recv with MSG_PEEK.
func (c *conn) open() bool {
	c.peeked = false
	err := c.raw.Read(c.peekOnce)
	if c.deadlinePassed(err) { // the last response's, left set: not a closed connection
		c.clearHeadDeadline()
		err = c.raw.Read(c.peekOnce)
	}
	return err == nil && c.peeked
}

// peek is the liveness check's recv: c.peeked reports that nothing, not
// even an end, was there to read. It is handed to the socket as
// c.peekOnce, a method value made once per connection (made per check, it
// and a closure's variables would cost allocations per request).
func (c *conn) peek(fd uintptr) bool {
	c.peeked = sockio.NothingToRead(fd)
	return true // never wait
}

// release returns c to the pool, or closes it.
func (t *Transport) release(c *conn, reuse bool) {
	if reuse {
		t.mu.Lock()
		stack := t.idle[c.key]
		if !t.closed && (stack == nil || len(*stack) < MaxIdlePerHost) {
			if stack == nil {
				stack = new([]*conn)
				t.idle[c.key] = stack
			}
			c.idleSince = time.Now()
			*stack = append(*stack, c)
			if t.janitor == nil {
				t.janitor = time.AfterFunc(IdleTimeout/2, t.prune)
			}
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
	_ = c.Close()
}

// prune closes connections idle longer than IdleTimeout, and runs again
// while any are left.
func (t *Transport) prune() {
	now := time.Now()
	var stale []*conn
	t.mu.Lock()
	for key, stack := range t.idle {
		conns := *stack
		i := 0
		for i < len(conns) && now.Sub(conns[i].idleSince) >= IdleTimeout {
			i++
		}
		stale = append(stale, conns[:i]...)
		if i == len(conns) {
			delete(t.idle, key)
		} else {
			*stack = append(conns[:0:0], conns[i:]...)
		}
	}
	if len(t.idle) > 0 && !t.closed {
		t.janitor.Reset(IdleTimeout / 2)
	} else {
		t.janitor = nil
	}
	t.mu.Unlock()
	for _, c := range stale {
		_ = c.Close()
	}
}

// CloseIdleConnections closes every idle connection and, once the
// transport is retired (Close), every connection handed back later.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[poolKey]*[]*conn{}
	t.mu.Unlock()
	for _, stack := range idle {
		for _, c := range *stack {
			_ = c.Close()
		}
	}
}

// Close retires the transport: idle connections close now, busy ones when
// their request ends. A retired transport can still send requests.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// dial opens a connection to u's host (or its connect_to address), with
// TLS for https.
func (t *Transport) dial(ctx context.Context, key poolKey, u *url.URL) (*conn, error) {
	addr := key.addr()
	nc, err := t.dialer.DialContext(ctx, "tcp", redirect(addr, t.opts.ConnectTo))
	if err != nil {
		return nil, err // a *net.OpError with Op "dial": the backend is unreachable
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		_ = nc.Close()
		return nil, fmt.Errorf("dial %s: not a socket", addr)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	nc = sockio.Wrap(nc) // under TLS too: its records go by the same writes
	if u.Scheme == "https" {
		cfg := t.opts.TLS.Clone()
		cfg.ServerName = u.Hostname()
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	sock := &socketWriter{Conn: nc}
	c := &conn{
		Conn: nc,
		key:  key,
		raw:  raw,
		bw:   bufio.NewWriterSize(sock, writeBufferSize),
		sock: sock,
	}
	c.src.Conn, c.src.flush, c.sendOnRead = nc, c.bw.Flush, true
	c.src.sock, _ = nc.(*sockio.Conn)
	c.br = bufio.NewReaderSize(&c.src, readBufferSize)
	c.abort = func() { _ = c.SetDeadline(time.Unix(1, 0)) } // made once, not per request
	c.cancel.overdue = overdue.New(hookDelay, c.registerHook)
	c.peekOnce = c.peek
	return c, nil
}

// socketWriter writes to a backend connection and remembers the first
// write that failed. Its ReadFrom sends a request body in large pieces: a
// TCP connection's own ReadFrom copies a body that is not a socket through
// 32 KiB, which for a gigabyte upload is four times the system calls of
// copyBufferSize.
type socketWriter struct {
	net.Conn
	err    error // the first failed write; set on the writing goroutine only
	writes int   // how many writes were made
}

func (w *socketWriter) Write(p []byte) (int, error) {
	w.writes++
	n, err := w.Conn.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

const copyBufferSize = 128 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

func (w *socketWriter) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{w}, r, *bp)
}

// poolKey is the pool a URL's connections belong to: its scheme and host
// as written (a comparable pair: no string is built per request).
type poolKey struct{ scheme, host string }

// addr is the "host:port" to dial: the host, with the scheme's port if it
// names none.
func (k poolKey) addr() string {
	u := url.URL{Host: k.host}
	if u.Port() != "" {
		return k.host
	}
	port := "80"
	if k.scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func (k poolKey) String() string { return k.scheme + "://" + k.addr() }
