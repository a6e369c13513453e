package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// hookCounter is a context that counts the hooks registered on it
// (context.AfterFunc asks a context with an AfterFunc method of its own,
// when it is not one of the context package's).
type hookCounter struct {
	context.Context
	hooks atomic.Int32
}

func (c *hookCounter) Value(any) any { return nil } // not taken for a context package's own

func (c *hookCounter) AfterFunc(f func()) func() bool {
	c.hooks.Add(1)
	return context.AfterFunc(c.Context, f)
}

// A short exchange registers no cancellation hook; one that runs past
// hookDelay does, and the client going away then aborts it at once.
func TestCancellationHookOnlyForLongExchanges(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.Header().Set("Content-Length", "8")
			io.WriteString(w, "slow")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * hookDelay):
			}
			io.WriteString(w, "body")
			return
		}
		io.WriteString(w, "ok")
	})
	tr := New(Options{})
	defer tr.Close()
	get(t, tr, srv.URL+"/short") // the connection, dialled without a hookCounter (the dial hooks its context)
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := &hookCounter{Context: parent}
	for range 3 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/short", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
	}
	if n := ctx.hooks.Load(); n != 0 {
		t.Fatalf("%d hooks for short exchanges", n)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(3*hookDelay, cancel)
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	if err == nil {
		t.Fatal("a body cut off by the client going away read to a clean end")
	}
	if took := time.Since(start); took > 5*hookDelay {
		t.Fatalf("the body read ended %v after it began, the client went away after %v", took, 3*hookDelay)
	}
	if n := ctx.hooks.Load(); n != 1 {
		t.Fatalf("%d hooks for a long exchange, want 1", n)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// A client gone before the hook is registered still ends the exchange,
// once it is, within hookDelay of its start; one gone before the exchange
// starts sends nothing.
func TestCancelBeforeTheHook(t *testing.T) {
	addr := silentBackend(t)
	tr := New(Options{})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(hookDelay/10, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 10*hookDelay {
		t.Fatalf("took %v", took)
	}

	sent := make(chan struct{}, 1)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { sent <- struct{}{} })
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	select {
	case <-sent:
		t.Fatal("the request of a client gone already reached the backend")
	case <-time.After(hookDelay):
	}
}

// The hook of one exchange never aborts the next on the same connection:
// the first's context ending after it is over spares the second.
func TestHookSparesTheNextExchange(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * hookDelay) // long enough for a hook
		io.WriteString(w, "ok")
	})
	tr := New(Options{})
	defer tr.Close()
	first, cancelFirst := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(first, http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	time.AfterFunc(hookDelay/2, cancelFirst) // during the second
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("the second exchange: %v", err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
		t.Fatalf("the second exchange: %q, %v", b, err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}
