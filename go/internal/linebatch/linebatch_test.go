package linebatch

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder keeps each write it gets.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func line(i int) []byte {
	return []byte(fmt.Sprintf("msg=request n=%d %s\n", i, strings.Repeat("x", 150)))
}

// A line after a quiet window goes out at once, in its own write.
func TestLoneLineGoesAtOnce(t *testing.T) {
	var r recorder
	w := New(&r, time.Hour)
	if _, err := w.Write(line(1)); err != nil {
		t.Fatal(err)
	}
	if got := r.got(); len(got) != 1 || got[0] != string(line(1)) {
		t.Fatalf("writes %q, want the line at once", got)
	}
}

// Lines that follow closely are held, at most a window, and go out
// together: in order, each write whole lines of at most PipeBuf bytes.
func TestBurstGoesInBatches(t *testing.T) {
	var r recorder
	const window = 50 * time.Millisecond
	w := New(&r, window)
	var want bytes.Buffer
	for i := range 1000 {
		want.Write(line(i))
		if _, err := w.Write(line(i)); err != nil {
			t.Fatal(err)
		}
	}
	last := time.Now()
	var got []string
	for time.Since(last) < 2*time.Second {
		if got = r.got(); len(strings.Join(got, "")) == want.Len() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if joined := strings.Join(got, ""); joined != want.String() {
		t.Fatalf("the lines came out as %d bytes, want %d in order", len(joined), want.Len())
	}
	if took := time.Since(last); took > window+200*time.Millisecond {
		t.Fatalf("the last lines waited %v, window %v", took, window)
	}
	if len(got) > 1000/20 {
		t.Fatalf("%d writes for 1000 lines: not batched", len(got))
	}
	for i, wr := range got {
		if len(wr) > PipeBuf || !strings.HasSuffix(wr, "\n") {
			t.Fatalf("write %d: %d bytes, ends %q", i, len(wr), wr[len(wr)-1:])
		}
	}
}

// A line longer than PipeBuf goes out alone, after the lines before it.
func TestLongLineGoesAlone(t *testing.T) {
	var r recorder
	w := New(&r, time.Hour)
	long := []byte(strings.Repeat("y", PipeBuf+10) + "\n")
	_, _ = w.Write(line(1)) // at once
	_, _ = w.Write(line(2)) // held
	_, _ = w.Write(long)
	got := r.got()
	if len(got) != 3 || got[1] != string(line(2)) || got[2] != string(long) {
		t.Fatalf("writes %d, want the first line, the held one, then the long one", len(got))
	}
}

// Flush writes what is held, at once.
func TestFlush(t *testing.T) {
	var r recorder
	w := New(&r, time.Hour)
	_, _ = w.Write(line(1))
	_, _ = w.Write(line(2))
	if got := r.got(); len(got) != 1 {
		t.Fatalf("%d writes before Flush, want 1", len(got))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := r.got(); len(got) != 2 || got[1] != string(line(2)) {
		t.Fatalf("writes after Flush %q", got)
	}
}

// An immediate line goes out at once, after the ones held.
func TestImmediateGoesAfterTheHeld(t *testing.T) {
	var r recorder
	w := New(&r, time.Hour)
	_, _ = w.Write(line(1)) // at once
	_, _ = w.Write(line(2)) // held
	if _, err := w.Immediate().Write([]byte("level=WARN msg=now\n")); err != nil {
		t.Fatal(err)
	}
	got := r.got()
	if len(got) != 3 || got[1] != string(line(2)) || got[2] != "level=WARN msg=now\n" {
		t.Fatalf("writes %q, want the held line, then the immediate one", got)
	}
}

// Concurrent writers lose no line and cut none.
func TestConcurrentWriters(t *testing.T) {
	var r recorder
	w := New(&r, 5*time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				_, _ = w.Write(line(g*1000 + i))
			}
		}()
	}
	wg.Wait()
	_ = w.Flush()
	lines := strings.Split(strings.TrimSuffix(strings.Join(r.got(), ""), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want %d", len(lines), 8*500)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if !strings.HasPrefix(l, "msg=request n=") || seen[l] {
			t.Fatalf("line %q cut or repeated", l)
		}
		seen[l] = true
	}
}

func BenchmarkWrite(b *testing.B) {
	var n nullWriter
	w := New(&n, 10*time.Millisecond)
	p := line(1)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = w.Write(p)
	}
}

type nullWriter struct{ writes int }

func (n *nullWriter) Write(p []byte) (int, error) { n.writes++; return len(p), nil }
