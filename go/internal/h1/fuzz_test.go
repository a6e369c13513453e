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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// FuzzServe sends arbitrary bytes, as one client connection, to a Server
// on loopback: the client writes them, half-closes, and reads to the end.
// The server must log no error (a panic in h1 is recovered and logged at
// Error), must not hand the handler a request that net/http's server
// refuses, must end the connection within ioTimeout, and what it sends must
// be HTTP/1.1 responses that parse one after the other: one 200 per request
// the handler saw, with the body the handler wrote (none for HEAD), maybe
// preceded by 100 Continue, and at most one refusal (4xx/5xx) at the end.
// A connection the server resets may lose its tail; only what came is
// checked then.
func FuzzServe(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}

	// One server per fuzz process; each input gets its own connection. A
	// small MaxHeaderBytes brings the head limit (it plus 4 KiB) below the
	// 8 KiB read buffer, within reach of short inputs.
	h := &fuzzHandler{}
	srv := &Server{
		Handler:           h,
		MaxHeaderBytes:    1024,
		ReadHeaderTimeout: time.Second,
		IdleTimeout:       time.Second,
		Log:               slog.New(&h.log),
	}
	// A Unix socket, not TCP: thousands of connections a second over TCP
	// would leave as many ports in TIME_WAIT for a minute, starving what
	// runs next of ephemeral ports. h1 serves any net.Listener alike.
	ln, err := net.Listen("unix", filepath.Join(f.TempDir(), "h1.sock"))
	if err != nil {
		f.Fatal(err)
	}
	addr := ln.Addr().(*net.UnixAddr)
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, input []byte) {
		h.reset()
		out, readErr := sendAndRead(t, addr, input)
		// The server logs a panic before it closes the connection, and
		// forgets the connection after: once it has, its log is complete
		// and the handler's record of the requests final.
		closed := connsClosed(srv, ioTimeout)
		if msgs := h.log.take(); len(msgs) > 0 {
			t.Fatalf("server logged an error for input %q:\n%s", input, strings.Join(msgs, "\n\n"))
		}
		reset := errors.Is(readErr, syscall.ECONNRESET)
		switch {
		case errors.Is(readErr, os.ErrDeadlineExceeded):
			t.Fatalf("connection still open after %v; received %q", ioTimeout, out)
		case readErr != nil && !reset:
			t.Fatalf("reading the answer: %v; received %q", readErr, out)
		case !closed:
			t.Fatalf("server still holds the connection %v after the client saw its end", ioTimeout)
		}
		answers, bad := h.take()
		if len(bad) > 0 {
			t.Fatalf("handler called with requests net/http's server refuses, for input %q:\n%s", input, strings.Join(bad, "\n"))
		}
		checkAnswers(t, out, !reset, answers)
	})
}

var fuzzSeeds = []string{
	"",
	"GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n",
	"GET http://example.com/c?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
	// Pipelined, with every mode of fuzzHandler.
	"GET /c HTTP/1.1\r\nHost: a\r\n\r\nPOST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /f HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\nGET /u HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD /c HTTP/1.1\r\nHost: a\r\n\r\nHEAD /l HTTP/1.1\r\nHost: a\r\n\r\nHEAD /f HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\nGET /f HTTP/1.1\r\nHost: a\r\n\r\n",
	"PUT /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
	"PUT /n HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /n HTTP/1.1\r\nHost: a\r\nContent-Length: 300000\r\n\r\nabc",
	"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
	"GET /c HTTP/1.0\r\n\r\n",
	"GET /l HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /u HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET /l?close HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: a\r\nHOST: a\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 6000) + "\r\n\r\n",
	strings.Repeat("GET /l HTTP/1.1\r\nHost: a\r\n\r\n", 300),
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: nothing\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
	"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n",
	"POST /n HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /l HTTP/1.1\nHost: a\n\nGET /c HTTP/1.1\nHost: a\n\n",
	"\x00\xff GARBAGE\r\n\r\n",
	"GET\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"CONNECT a:443 HTTP/1.1\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
}

// fuzzHandler serves the fuzzed requests as the proxy uses the API, by the
// first byte of the path after its slash:
//
//	c  body written in two Writes without Content-Length (chunked)
//	f  Flush first, then two Writes with a Flush between (chunked)
//	g  Content-Length, a Write, Flush, the rest
//	r  Content-Length, body by io.Copy through the ReadFrom method
//	u  body by io.Copy through ReadFrom, without Content-Length (chunked)
//	b  as r, but past the 32 KiB write buffer
//	n  the request body left unread, nothing written
//	*  Content-Length and one Write
//
// A query containing "close" adds Connection: close. The body names the
// request, so that a response can be matched to the request it answers.
type fuzzHandler struct {
	log errorLog

	mu      sync.Mutex
	answers []answer // in the order of the requests
	bad     []string // requests net/http's server would have refused
}

// answer is what the handler sent for one request, as a client reads it.
type answer struct {
	method, body string
}

func (h *fuzzHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The server promises to refuse what net/http's server refuses. The
	// Host it checks is the raw field line's; net/http checks the value
	// as parsed, which is r.Host for a request in origin form.
	if r.ProtoMajor != 1 || r.URL.Host == "" && !httpguts.ValidHostHeader(r.Host) {
		h.mu.Lock()
		h.bad = append(h.bad, fmt.Sprintf("%s %q %s with Host %q", r.Method, r.RequestURI, r.Proto, r.Host))
		h.mu.Unlock()
	}
	var mode byte
	if p := strings.TrimPrefix(r.URL.Path, "/"); p != "" {
		mode = p[0]
	}
	var read int64
	if mode != 'n' {
		// As the proxy bounds its body reads; the client's half-close
		// ends the body before the deadline.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second))
		read, _ = io.Copy(io.Discard, r.Body)
	}
	body := fmt.Sprintf("%s %q read %d\n", r.Method, r.URL.Path, read)
	switch mode {
	case 'b':
		body = strings.Repeat(body, (40<<10)/len(body)+1)
	case 'n':
		body = ""
	}
	a := answer{r.Method, body}
	if r.Method == http.MethodHead {
		a.body = ""
	}
	h.mu.Lock()
	h.answers = append(h.answers, a)
	h.mu.Unlock()

	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Mode", strconv.Itoa(int(mode)))
	if strings.Contains(r.URL.RawQuery, "close") {
		hdr.Set("Connection", "close")
	}
	rc := http.NewResponseController(w)
	half := len(body) / 2
	switch mode {
	case 'c':
		io.WriteString(w, body[:half])
		io.WriteString(w, body[half:])
	case 'f':
		rc.Flush()
		io.WriteString(w, body[:half])
		rc.Flush()
		io.WriteString(w, body[half:])
	case 'g':
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body[:half])
		rc.Flush()
		io.WriteString(w, body[half:])
	case 'r', 'b':
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		io.Copy(w, readerOnly{strings.NewReader(body)})
	case 'u':
		io.Copy(w, readerOnly{bytes.NewReader([]byte(body))})
	case 'n':
	default:
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}
}

// readerOnly hides a reader's WriteTo, so that io.Copy goes through the
// response's ReadFrom.
type readerOnly struct{ io.Reader }

func (h *fuzzHandler) reset() {
	h.take()
	h.log.take()
}

// take returns what the handler recorded since the last take.
func (h *fuzzHandler) take() (answers []answer, bad []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	answers, bad = h.answers, h.bad
	h.answers, h.bad = nil, nil
	return answers, bad
}

// errorLog is a slog.Handler that keeps the records at level Error and
// above, with their attributes (the panic and its stack).
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelError
}

func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, "\n%s: %s", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}

// WithAttrs and WithGroup drop what they are given: the server uses
// neither.
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	msgs := l.msgs
	l.msgs = nil
	return msgs
}

// sendAndRead writes input on a new connection to addr and half-closes it,
// while reading everything the server sends until it ends the connection
// or ioTimeout passes. Writing and reading run together so that a long
// input's answers cannot fill the socket buffers and stall both sides.
func sendAndRead(t *testing.T, addr *net.UnixAddr, input []byte) ([]byte, error) {
	conn, err := net.DialUnix("unix", nil, addr)
	if err != nil {
		t.Fatalf("dialing the server: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// The server may answer and close before it has read it all:
		// write errors are no failure.
		_, _ = conn.Write(input)
		_ = conn.CloseWrite() // the server sees EOF instead of waiting for a timeout
	}()
	out, err := io.ReadAll(conn)
	<-wrote
	return out, err
}

// connsClosed waits up to d for srv to have no connection left.
func connsClosed(srv *Server, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		srv.mu.Lock()
		n := len(srv.conns)
		srv.mu.Unlock()
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// checkAnswers parses out as the responses to the requests the handler
// answered, in order, then maybe a refusal. complete says the connection
// ended cleanly; after a reset the last response may be cut short.
func checkAnswers(t *testing.T, out []byte, complete bool, answers []answer) {
	t.Helper()
	const proto = "HTTP/1.1 "
	if len(out) > 0 && !bytes.HasPrefix(out, []byte(proto)) && (complete || !strings.HasPrefix(proto, string(out))) {
		t.Fatalf("server sent %q, not a response", out)
	}
	br := bufio.NewReader(bytes.NewReader(out))
	final := 0 // final (non-1xx) responses read
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		method := http.MethodGet // for a refusal, which has a body
		if final < len(answers) {
			method = answers[final].method
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
		}
		if err != nil {
			if !complete {
				return // the reset cut it short
			}
			t.Fatalf("response %d (to %s) does not parse: %v\nhandler answered %d requests; received %q", final+1, method, err, len(answers), out)
		}
		cut := !complete && br.Buffered() == 0 // maybe truncated, if it ends at EOF
		switch {
		case resp.Proto != "HTTP/1.1":
			t.Fatalf("response %d is %s, want HTTP/1.1; received %q", final+1, resp.Proto, out)
		case resp.StatusCode < 200:
			if resp.StatusCode != http.StatusContinue || final >= len(answers) {
				t.Fatalf("unexpected %s before response %d; received %q", resp.Status, final+1, out)
			}
			continue
		case final < len(answers):
			if want := answers[final]; resp.StatusCode != http.StatusOK || (!cut && string(body) != want.body) {
				t.Fatalf("response %d (to %s): got %s with body %q, want 200 with %q; received %q", final+1, method, resp.Status, body, want.body, out)
			}
		case final == len(answers):
			if resp.StatusCode < 400 {
				t.Fatalf("response %d answers no request the handler saw, yet is %s; received %q", final+1, resp.Status, out)
			}
		default:
			t.Fatalf("response %d follows a refusal; received %q", final+1, out)
		}
		final++
	}
	if complete && final < len(answers) {
		t.Fatalf("handler answered %d requests, but only %d responses came; received %q", len(answers), final, out)
	}
}
