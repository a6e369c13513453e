package nowait

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingWriter is the ordinary write, counted.
type countingWriter struct {
	w     io.Writer
	calls atomic.Int32
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.calls.Add(1)
	return c.w.Write(p)
}

func lines(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(strings.Repeat("x", 200) + " line " + string(rune('a'+i%26)) + "\n")
	}
	return out
}

func TestPipeIsWrittenByRawCalls(t *testing.T) {
	r, wf, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer wf.Close()
	fallback := &countingWriter{w: wf}
	w := For(int(wf.Fd()), fallback)
	defer w.Close()
	var want bytes.Buffer
	for _, l := range lines(20) {
		if n, err := w.Write(l); n != len(l) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		want.Write(l)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the pipe's reader did not get the lines in order")
	}
	if fallback.calls.Load() != 0 {
		t.Fatalf("%d ordinary writes to a pipe with room, want 0", fallback.calls.Load())
	}
}

// A full pipe refuses the raw call at once; the ordinary write then waits
// for the reader, and nothing is lost or reordered.
func TestFullPipeFallsBackToTheBlockingWrite(t *testing.T) {
	r, wf, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fallback := &countingWriter{w: wf}
	w := For(int(wf.Fd()), fallback)
	chunk := append(bytes.Repeat([]byte("y"), 4095), '\n')
	var written bytes.Buffer
	done := make(chan error, 1)
	go func() {
		for fallback.calls.Load() == 0 && written.Len() < 64<<20 {
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
			written.Write(chunk)
		}
		done <- nil
	}()
	// Nobody reads: the pipe fills by raw calls, and then the writer must be
	// waiting in the ordinary write, not in a raw call.
	time.Sleep(200 * time.Millisecond)
	if calls := fallback.calls.Load(); calls != 1 {
		t.Fatalf("%d ordinary writes once the pipe was full, want 1 (waiting)", calls)
	}
	go func() {
		err := <-done
		w.Close()
		wf.Close() // the reader sees the end once no write side is open
		done <- err
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, written.Bytes()) {
		t.Fatalf("read %d bytes, wrote %d: lost or reordered", len(got), written.Len())
	}
}

func TestSocketIsWrittenByRawCalls(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	fallback := &countingWriter{w: a}
	w := For(fds[0], fallback)
	var want bytes.Buffer
	for _, l := range lines(20) {
		if _, err := w.Write(l); err != nil {
			t.Fatal(err)
		}
		want.Write(l)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) || fallback.calls.Load() != 0 {
		t.Fatalf("socket: in order %v, ordinary writes %d (want 0)", bytes.Equal(got, want.Bytes()), fallback.calls.Load())
	}
}

func TestRegularFileIsWrittenTheOrdinaryWay(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fallback := &countingWriter{w: f}
	w := For(int(f.Fd()), fallback)
	for _, l := range lines(3) {
		if _, err := w.Write(l); err != nil {
			t.Fatal(err)
		}
	}
	if fallback.calls.Load() != 3 {
		t.Fatalf("%d ordinary writes to a regular file, want 3", fallback.calls.Load())
	}
}

// A program may point the descriptor elsewhere after the Writer was made;
// the lines follow it, and none goes to the pipe it was.
func TestLinesFollowTheDescriptorWhenItIsReplaced(t *testing.T) {
	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	for _, f := range []*os.File{r1, w1, r2, w2} {
		defer f.Close()
	}
	fd, err := syscall.Dup(int(w1.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	target := os.NewFile(uintptr(fd), "target")
	defer target.Close()
	w := For(fd, target)
	defer w.Close()
	if _, err := w.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup2(int(w2.Fd()), fd); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("second\n")); err != nil {
		t.Fatal(err)
	}
	w1.Close() // r1 reads to its end only if no writer of its pipe is left
	target.Close()
	w.Close()
	if got, _ := io.ReadAll(r1); string(got) != "first\n" {
		t.Fatalf("the first pipe got %q, want only the line written before the switch", got)
	}
	got := make([]byte, len("second\n"))
	if _, err := io.ReadFull(r2, got); err != nil || string(got) != "second\n" {
		t.Fatalf("the new target got %q, %v", got, err)
	}
}

// A pipe without a reader, from the start or once its reader went away
// after the Writer's own descriptor was opened: the ordinary write's error
// is reported (the raw write's SIGPIPE does not end the process: Go lets a
// descriptor other than 1 and 2 fail with EPIPE).
func TestPipeWithoutReaderReportsTheError(t *testing.T) {
	for _, later := range []bool{false, true} {
		r, wf, _ := os.Pipe()
		w := For(int(wf.Fd()), wf)
		if later {
			if _, err := w.Write([]byte("read\n")); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		if _, err := w.Write([]byte("lost\n")); !errors.Is(err, syscall.EPIPE) {
			t.Errorf("reader gone (after the first write: %v): Write's error is %v, want EPIPE", later, err)
		}
		w.Close()
		wf.Close()
	}
}
