package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingServer is a countingServer that records each request's method,
// path and body as the backend received them.
func recordingServer(t *testing.T) (url string, conns func() int64, seen func() []string) {
	t.Helper()
	var mu sync.Mutex
	var lines []string
	srv, n := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			b = []byte("error: " + err.Error())
		}
		mu.Lock()
		lines = append(lines, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		w.Write(b)
	})
	return srv.URL, n.Load, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
}

// Small bodies reach the backend whole, and their connection is reused;
// one byte past the bound, a body streams (whose connection is reused too:
// TestStreamedUploadsReuse).
func TestSmallUploadsGoWholeAndReuse(t *testing.T) {
	url, conns, _ := recordingServer(t)
	tr := New(Options{})
	defer tr.Close()
	for i, size := range []int{1, 4096, maxSmallBody, 4096, maxSmallBody + 1} {
		if i == 4 {
			if n := conns(); n != 1 {
				t.Fatalf("%d connections, want 1", n)
			}
		}
		payload := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		req, _ := http.NewRequest(http.MethodPut, url+"/b/k", bytes.NewReader(payload))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		echoed, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(echoed, payload) {
			t.Fatalf("%d bytes: the backend got %d bytes (%v)", size, len(echoed), err)
		}
	}
}

// A small body that fails (a client cut off, a hash that does not match at
// its end) is never sent: the backend sees no byte of it, RoundTrip returns
// the body's error, and the pooled connection stays as it was, reused by
// the next request.
func TestFailingSmallBodyNeverReachesTheBackend(t *testing.T) {
	url, conns, seen := recordingServer(t)
	tr := New(Options{})
	defer tr.Close()
	get(t, tr, url+"/before")
	bodyErr := errors.New("x-amz-content-sha256 does not match")
	body := io.MultiReader(strings.NewReader("first part"), errReader{bodyErr})
	req, _ := http.NewRequest(http.MethodPut, url+"/b/k", body)
	req.ContentLength = 100
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), bodyErr.Error()) {
		t.Fatalf("err %v, want the body's error", err)
	}
	get(t, tr, url+"/after")
	want := []string{"GET /before ", "GET /after "}
	if got := seen(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the backend received %q, want %q", got, want)
	}
	if n := conns(); n != 1 {
		t.Fatalf("%d connections, want 1: the failed body's request took it", n)
	}
}

// A body shorter or longer than its Content-Length is refused as
// writeBody refuses it, before anything is sent.
func TestSmallBodyOfTheWrongLength(t *testing.T) {
	for _, c := range []struct {
		body   string
		length int64
	}{{"short", 10}, {"longer than announced", 5}} {
		url, conns, _ := recordingServer(t)
		tr := New(Options{})
		req, _ := http.NewRequest(http.MethodPut, url+"/b/k", io.NopCloser(strings.NewReader(c.body)))
		req.ContentLength = c.length
		_, err := tr.RoundTrip(req)
		if err == nil || !strings.Contains(err.Error(), "ContentLength=") {
			t.Fatalf("%q as %d bytes: err %v, want the length mismatch", c.body, c.length, err)
		}
		if n := conns(); n != 0 {
			t.Fatalf("%q as %d bytes: the backend was connected to", c.body, c.length)
		}
		tr.Close()
	}
}

// A backend that refuses at once (after the head, without reading the
// body) and closes: its answer is what the caller gets.
func TestEarlyAnswerToASmallUpload(t *testing.T) {
	addr := oneConnection(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c)) // the head only
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied")
		c.Close()
	})
	tr := New(Options{ResponseHeaderTimeout: 5 * time.Second})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", strings.NewReader(strings.Repeat("x", 4096)))
	resp, err := tr.RoundTrip(req)
	wantDenied(t, resp, err)
}

// The backend answered and reset the connection before the small request
// was written: the write fails, and the answer it sent first is still what
// the caller gets (earlyAnswerGrace), on a connection not reused.
func TestSmallUploadToAResetConnectionKeepsTheAnswer(t *testing.T) {
	dialled, gone := make(chan struct{}), make(chan struct{})
	addr := oneConnection(t, func(c net.Conn) {
		<-dialled
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\ndenied")
		c.(*net.TCPConn).SetLinger(0) // close with a reset
		c.Close()
		close(gone)
	})
	tr := New(Options{ResponseHeaderTimeout: 5 * time.Second})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", strings.NewReader(strings.Repeat("x", 4096)))
	small, ok, err := readSmallBody(req)
	if !ok || err != nil {
		t.Fatalf("a 4 KiB body was not read ahead: %v", err)
	}
	defer small.release()
	c, err := tr.dial(context.Background(), poolKey{req.URL.Scheme, req.URL.Host}, req.URL)
	if err != nil {
		t.Fatal(err)
	}
	close(dialled)
	<-gone
	time.Sleep(50 * time.Millisecond) // let the reset arrive
	resp, err := tr.exchange(context.Background(), c, req, &small)
	if !c.writeFailed() {
		t.Fatal("the write to a reset connection succeeded")
	}
	wantDenied(t, resp, err)
	if stack := tr.idle[poolKey{req.URL.Scheme, req.URL.Host}]; stack != nil && len(*stack) != 0 {
		t.Fatal("a connection whose write failed went back to the pool")
	}
}

// A backend that answers at once and never reads, nor closes: a request
// with a body at the bound still goes out whole into the socket buffers,
// and the answer is read (the write does not wait for the backend).
func TestSmallUploadToABackendThatNeverReads(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	addr := oneConnection(t, func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied")
		<-release
	})
	tr := New(Options{})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/b/k", strings.NewReader(strings.Repeat("x", maxSmallBody)))
	req.Header.Set("X-Amz-Meta-Large", strings.Repeat("m", 8<<10))
	result := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 403 || string(b) != "denied" {
				err = errors.New(resp.Status + " " + string(b))
			}
		}
		result <- err
	}()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("want the 403 denied: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write waits for a backend that never reads")
	}
}

// silentBackend reads requests (with their bodies) and never answers.
func silentBackend(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return oneConnection(t, func(c net.Conn) {
		defer c.Close()
		if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.Copy(io.Discard, req.Body)
		}
		<-release
	})
}

// ResponseHeaderTimeout bounds the wait for the answer once a small
// request is out.
func TestSmallUploadResponseHeaderTimeout(t *testing.T) {
	addr := silentBackend(t)
	tr := New(Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	defer tr.Close()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", strings.NewReader("small"))
	_, err := tr.RoundTrip(req)
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
}

// The client going away (its context cancelled) ends the wait for the
// answer to a small request.
func TestCancelledSmallUpload(t *testing.T) {
	addr := silentBackend(t)
	tr := New(Options{})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+"/", strings.NewReader("small"))
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
}

// A small upload, though its body is at hand, is not sent again when the
// backend drops its pooled connection after reading it: it may have acted
// on it.
func TestSmallUploadIsNotReplayed(t *testing.T) {
	addr, seen := dropsSecondRequest(t)
	tr := New(Options{})
	defer tr.Close()
	get(t, tr, "http://"+addr+"/warm")
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/b/k", strings.NewReader("small"))
	if _, err := tr.RoundTrip(req); err == nil || !connectionLost(err) {
		t.Fatalf("got %v, want the lost connection's error", err)
	}
	time.Sleep(20 * time.Millisecond) // the backend records asynchronously
	want := []string{"GET /warm", "PUT /b/k"}
	if got := seen(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the backend received %q, want %q", got, want)
	}
}

// Reading a small body ahead costs no allocation of its own: the buffer is
// pooled.
func TestReadSmallBodyAllocations(t *testing.T) {
	payload := strings.NewReader(strings.Repeat("x", 4096))
	req, _ := http.NewRequest(http.MethodPut, "http://backend/b/k", io.NopCloser(payload))
	req.ContentLength = 4096
	allocs := testing.AllocsPerRun(100, func() {
		payload.Seek(0, io.SeekStart)
		small, ok, err := readSmallBody(req)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		small.release()
	})
	if allocs > 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

// A small request goes out without an allocation of its own: its
// Content-Length digits too.
func TestSmallRequestWriteAllocations(t *testing.T) {
	payload := strings.NewReader(strings.Repeat("x", 4096))
	req, _ := http.NewRequest(http.MethodPut, "http://backend/b/k", io.NopCloser(payload))
	req.ContentLength = 4096
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	bw := bufio.NewWriter(io.Discard)
	allocs := testing.AllocsPerRun(100, func() {
		payload.Seek(0, io.SeekStart)
		if err := writeSmall(bw, req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

// writeSmall writes req as RoundTrip sends it: a small body read ahead,
// then head and body; any other request by writeRequest.
func writeSmall(w *bufio.Writer, req *http.Request) error {
	small, ok, err := readSmallBody(req)
	if err != nil {
		return err
	}
	if !ok {
		return writeRequest(w, req)
	}
	defer small.release()
	return small.write(w, req)
}
