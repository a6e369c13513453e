// Package linebatch writes log lines to an output in batches.
//
// The proxy logs one access line per request at the default level, info.
// Written one system call per line, as slog's handlers do to os.Stderr,
// each line also costs a small request a write and the thread hand-off Go
// makes around a blocking one. A Writer sends a line at once when nothing
// was written for a window before it, so a lone request's line is never
// held back; a line that follows closer than that waits, at most one
// window, to go out with the others in one write.
//
// Every write of the output is at most PipeBuf bytes and ends with a
// whole line, unless a single line is longer: the kernel writes that much
// to a pipe in one piece, so lines that others write to the same pipe
// (the Python program's own logging shares stderr) never cut into ours.
package linebatch

import (
	"io"
	"sync"
	"time"
)

// PipeBuf is the most a write to a pipe may hold and stay whole (POSIX
// PIPE_BUF, 4096 on Linux).
const PipeBuf = 4096

// Writer batches whole lines (each Write ends with one, as a slog
// handler's record does) for out. Its methods may be called concurrently.
type Writer struct {
	out    io.Writer
	window time.Duration

	mu      sync.Mutex
	buf     []byte    // lines waiting; never more than PipeBuf bytes
	written time.Time // when out was last written
	timer   *time.Timer
	armed   bool // the timer is set to write buf
}

// New returns a Writer that holds a line for at most window.
func New(out io.Writer, window time.Duration) *Writer {
	return &Writer{out: out, window: window, buf: make([]byte, 0, PipeBuf)}
}

// Write sends p at once if nothing was written for a window, else adds it
// to the batch. The error of a batched line's eventual write is not
// reported: a logger has no one to report it to.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if len(w.buf) == 0 && now.Sub(w.written) >= w.window {
		w.written = now
		return w.out.Write(p)
	}
	if len(w.buf)+len(p) > PipeBuf {
		w.flush(now)
	}
	if len(p) > PipeBuf { // too long to batch; the ones before it are out
		w.written = now
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	if !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(w.window, w.onTimer)
		} else {
			w.timer.Reset(w.window)
		}
	}
	return len(p), nil
}

// Immediate returns a writer to the same output that sends each line at
// once, after the lines waiting: for lines that must not wait (a warning),
// in order with the batched ones.
func (w *Writer) Immediate() io.Writer { return immediate{w} }

type immediate struct{ w *Writer }

func (i immediate) Write(p []byte) (int, error) {
	i.w.mu.Lock()
	defer i.w.mu.Unlock()
	now := time.Now()
	if err := i.w.flush(now); err != nil {
		return 0, err
	}
	i.w.written = now
	return i.w.out.Write(p)
}

// Flush writes the lines waiting, now.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush(time.Now())
}

func (w *Writer) onTimer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	_ = w.flush(time.Now())
}

// flush writes buf, with mu held.
func (w *Writer) flush(now time.Time) error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	w.buf = w.buf[:0]
	w.written = now
	return err
}
