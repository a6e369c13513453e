package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/object-storage-proxy/osp/internal/overdue"
	"github.com/object-storage-proxy/osp/internal/readdeadline"
	"github.com/object-storage-proxy/osp/internal/sockio"
)

// Connection states, for Shutdown: an idle connection waits for a
// request's first byte and may be closed; an active one is left to finish.
const (
	stateActive int32 = iota
	stateIdle
	stateClosed
)

// readBufferSize holds a request head of the usual size, and what a
// pipelining client sends behind it, in one read.
const readBufferSize = 8 << 10

// conn is one client connection, served on its own goroutine.
type conn struct {
	srv    *Server
	rwc    net.Conn
	remote string
	src    connReader
	br     *bufio.Reader
	state  atomic.Int32
	// refused is set when the connection ends with the client possibly
	// still sending: it is half-closed and drained before the close, or
	// the kernel's reset could destroy the answer before the client reads it.
	refused bool
	scratch [64]byte // formats a status line or a chunk size
	watch   closeWatch
	// deadline is the read deadline that bounds the wait for a request
	// head, set lazily (readDeadline). Every read deadline set on rwc goes
	// through it, or is followed by its Forget. It is used by one goroutine
	// at a time: the connection's, but while a request runs the close
	// watch's (under its mutex, which stop takes) and the handler's
	// (response.SetReadDeadline, never called once the handler returned:
	// upstream waits for its upload writer before a response is done).
	deadline readdeadline.Deadline
	// running is the context of the request being served, if any, for
	// Server.Close to cancel.
	running atomic.Pointer[requestContext]
	// dateText is the Date field's value of the second dateSecond, for
	// the answers of that second.
	dateText   []byte
	dateSecond int64
	dateBuf    [len(http.TimeFormat)]byte
}

// date returns the Date field's value for now, formatted once a second.
func (c *conn) date(now time.Time) []byte {
	if s := now.Unix(); s != c.dateSecond || c.dateText == nil {
		c.dateSecond = s
		c.dateText = now.UTC().AppendFormat(c.dateBuf[:0], http.TimeFormat)
	}
	return c.dateText
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: sockio.Wrap(rwc)}
	if addr := rwc.RemoteAddr(); addr != nil { // nil on some Unix sockets
		c.remote = addr.String()
	}
	c.src.conn = c.rwc
	c.br = bufio.NewReaderSize(&c.src, readBufferSize)
	c.watch.overdue = overdue.New(watchDelay, c.watch.run)
	c.state.Store(stateIdle)
	return c
}

func (c *conn) serve() {
	defer c.close()
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			c.srv.Log.Error("handler panicked; connection closed", "remote", c.remote, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	for served := 0; ; served++ {
		ex := new(exchange)
		if err := c.readRequest(served, ex); err != nil {
			c.refuse(err)
			return
		}
		if !c.handle(ex) {
			return
		}
	}
}

// errServerClosing ends a connection that was idle when Shutdown began.
var errServerClosing = errors.New("h1: server closing")

// readRequest waits for the next request and reads its head: the first
// within ReadHeaderTimeout of the connection's start, a later one within
// IdleTimeout of the previous answer, and every head within
// ReadHeaderTimeout of its first byte.
func (c *conn) readRequest(served int, ex *exchange) error {
	wait := c.srv.ReadHeaderTimeout
	if served > 0 && c.srv.IdleTimeout > 0 {
		wait = c.srv.IdleTimeout
	}
	c.readDeadline(wait)
	c.src.limit(int64(c.srv.maxHeaderBytes()) + 4096) // net/http's slack for the request line
	if served > 0 && !c.state.CompareAndSwap(stateActive, stateIdle) {
		return errServerClosing
	}
	if c.srv.closing.Load() {
		return errServerClosing
	}
	if _, err := c.br.Peek(1); err != nil {
		return err
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return errServerClosing // Shutdown closed it meanwhile
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	if hosts, n, ok := parseHead(buffered, c.br, ex); ok {
		return c.accept(&ex.req, hosts, true, n) // read no byte more: no deadline to set
	}
	c.readDeadline(c.srv.ReadHeaderTimeout)
	// ReadRequest drops the Host lines, which a server must count: record
	// the head as it is read.
	c.src.startRecording(buffered)
	req, err := http.ReadRequest(c.br)
	head := c.src.stopRecording()
	if err != nil {
		if c.src.hitLimit {
			return errHeadTooLarge
		}
		return err
	}
	ex.req = *req
	return c.accept(&ex.req, hostLines(head), false, 0)
}

// accept checks a request whose head was read, with the values of its Host
// lines, and consumes the n bytes of the head still buffered. fieldsValid
// says the parser checked every field name and value already.
func (c *conn) accept(req *http.Request, hosts []string, fieldsValid bool, n int) error {
	if err := checkRequest(req, hosts, fieldsValid); err != nil {
		return err
	}
	_, _ = c.br.Discard(n) // buffered: cannot fail
	c.src.limit(math.MaxInt64)
	if req.Body != http.NoBody {
		c.deadline.Clear(c.rwc) // the body's reads are the handler's to bound
	}
	// Else the head's deadline stays while the handler runs: nothing reads
	// the connection then but the close watch, which clears it first (see
	// closeWatch.headDeadline), and the next request sets its own. That
	// saves clearing and setting a runtime timer per request.
	req.RemoteAddr = c.remote
	return nil
}

// readDeadline bounds the wait for a request head to d from now, or
// lifts the bound if d is 0. The deadline is set lazily: one set for an
// earlier wait and still about d away is kept, so that a connection busy
// with short requests updates its timer (a cost per request otherwise,
// twice) about once per tenth of the timeout. A head is then waited for
// between d and d+d/10 (package readdeadline).
func (c *conn) readDeadline(d time.Duration) {
	c.deadline.Bound(c.rwc, c.srv.monotonicNow(), d)
}

// A refusal is what net/http's server answers to a request it cannot
// take: status and plain-text body.
type refusal struct {
	status int
	text   string
}

func (r *refusal) Error() string { return fmt.Sprintf("%d %s", r.status, r.text) }

var errHeadTooLarge = &refusal{http.StatusRequestHeaderFieldsTooLarge, "431 Request Header Fields Too Large"}

// checkRequest refuses what net/http's server refuses after parsing; hosts
// are the values of the request's Host lines, which http.ReadRequest drops.
// fieldsValid skips the check of every field name and value, for a head
// parseHead took: it takes none that fails it (FuzzParseHead holds it to
// that).
func checkRequest(req *http.Request, hosts []string, fieldsValid bool) error {
	if req.ProtoMajor != 1 {
		return &refusal{http.StatusHTTPVersionNotSupported, "505 HTTP Version Not Supported: unsupported protocol version"}
	}
	switch {
	case req.ProtoAtLeast(1, 1) && len(hosts) == 0 && req.Method != http.MethodConnect:
		return badRequest("missing required Host header")
	case len(hosts) > 1:
		return badRequest("too many Host headers")
	case len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		return badRequest("malformed Host header")
	case req.URL.Host == "" && !httpguts.ValidHostHeader(req.Host):
		// A Host line continued on the next (obs-fold): the parser joined
		// the lines into a value net/http's server would refuse.
		return badRequest("malformed Host header")
	}
	if !fieldsValid {
		if err := checkFields(req.Header); err != nil {
			return err
		}
	}
	if expect := firstValue(req.Header, "Expect"); expect != "" && !strings.EqualFold(expect, "100-continue") {
		return &refusal{http.StatusExpectationFailed, "417 Expectation Failed"}
	}
	return nil
}

// checkFields refuses a field name or value net/http's server refuses.
func checkFields(h http.Header) error {
	for name, values := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return badRequest("invalid header name")
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return badRequest("invalid header value")
			}
		}
	}
	return nil
}

// hostLines returns the values of the Host field lines of a request head.
func hostLines(head []byte) (values []string) {
	_, head, _ = bytes.Cut(head, []byte("\n")) // the request line
	for len(head) > 0 {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // the end of the head
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Host") {
			values = append(values, string(bytes.Trim(value, " \t")))
		}
	}
	return values
}

func badRequest(why string) *refusal {
	return &refusal{http.StatusBadRequest, "400 Bad Request: " + why}
}

// refuse answers a request that could not be read, in net/http's words,
// or says nothing when the connection just ended or timed out.
func (c *conn) refuse(err error) {
	var r *refusal
	switch {
	case errors.As(err, &r):
	case errors.Is(err, errServerClosing), errors.Is(err, io.EOF), isNetError(err):
		return
	case fmt.Sprintf("%T", err) == "*http.unsupportedTEError":
		// net/http's server tells it by this unexported type too.
		r = &refusal{http.StatusNotImplemented, "Unsupported transfer encoding"}
	default:
		r = &refusal{http.StatusBadRequest, "400 Bad Request"} // net/http does not show the parser's words
	}
	c.refused = true
	_ = c.rwc.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
	_, _ = fmt.Fprintf(c.rwc, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%s",
		r.status, http.StatusText(r.status), r.text)
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}

const (
	// refusalWriteTimeout bounds the write of a refusal to a client that
	// does not read.
	refusalWriteTimeout = 5 * time.Second
	// lingerTimeout is how long a refused client's bytes are drained after
	// the answer, so that the close does not reset the answer away.
	lingerTimeout = 500 * time.Millisecond
)

// close ends the connection; after a refusal it half-closes first and
// drains what the client still sends, for a while.
func (c *conn) close() {
	c.state.Store(stateClosed)
	c.watch.close()
	if tcp, ok := sockio.TCP(c.rwc); ok && c.refused {
		_ = tcp.CloseWrite()
		_ = tcp.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, tcp)
	}
	_ = c.rwc.Close()
	c.srv.forget(c)
}

// handle runs the handler on req and reports whether the connection can
// carry another request.
func (c *conn) handle(ex *exchange) bool {
	req := &ex.req
	*req = *req.WithContext(&ex.ctx) // WithContext's copy is inlined: on the stack
	c.running.Store(&ex.ctx)
	if c.srv.canceled.Load() {
		ex.ctx.cancel() // Close came before the store, and missed this request
	}
	defer func() {
		ex.ctx.cancel()
		c.running.Store(nil)
	}()
	ex.w = response{c: c, req: req, header: http.Header{}, length: -1}
	w := &ex.w
	watching := false
	if req.Body == http.NoBody {
		if c.br.Buffered() == 0 { // else a pipelined request is already here
			c.watch.start(c, &ex.ctx)
			watching = true
		}
	} else {
		ex.body = requestBody{ReadCloser: req.Body, w: w, expect: req.ProtoAtLeast(1, 1) && firstValue(req.Header, "Expect") != ""}
		w.body = &ex.body
		req.Body = w.body
	}
	c.srv.Handler.ServeHTTP(w, req)
	if watching && !c.watch.stop() {
		return false // the client went away
	}
	return w.finish() && !c.srv.closing.Load()
}

// connReader is the connection as the read buffer sees it: it bounds a
// request head, and gives back a byte the close watch read.
type connReader struct {
	conn     net.Conn
	remain   int64
	hitLimit bool
	pending  bool
	b        byte
	// record, while recording, keeps what is read, for hostLines.
	record    []byte
	recording bool
}

func (r *connReader) limit(n int64) { r.remain, r.hitLimit = n, false }

// maxKeptRecord is the largest head record kept for the next request.
const maxKeptRecord = 16 << 10

func (r *connReader) startRecording(buffered []byte) {
	r.record = append(r.record[:0], buffered...)
	r.recording = true
}

// stopRecording returns what was read since startRecording, with the
// bytes buffered then: the head, and maybe what follows it.
func (r *connReader) stopRecording() []byte {
	r.recording = false
	head := r.record
	if cap(r.record) > maxKeptRecord {
		r.record = nil
	}
	return head
}

func (r *connReader) unread(b byte) { r.pending, r.b = true, b }

func (r *connReader) Read(p []byte) (int, error) {
	if r.remain <= 0 {
		r.hitLimit = true
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.pending {
		r.pending = false
		p[0] = r.b
		r.remain--
		if r.recording {
			r.record = append(r.record, r.b)
		}
		return 1, nil
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.conn.Read(p)
	r.remain -= int64(n)
	if r.recording {
		r.record = append(r.record, p[:n]...)
	}
	return n, err
}
