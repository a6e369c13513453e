// Package nowait writes a process's log lines to its stderr by a raw,
// non-blocking system call when the output can take them at once, and
// through the os.File, which may block, only when it cannot.
//
// A write through an os.File enters Go's scheduler as a blocking call, and
// when every thread was idle just before, that wakes the scheduler's
// monitor thread, which then polls every 20 µs for a while: at the default
// log level, about one request line batch in three did, and a small PUT
// cost 1.13x the CPU it costs at warn. A raw call does not enter the
// scheduler, so it must never block: it is made only where the kernel can
// refuse at once instead, on a pipe (through a second, non-blocking open
// of the same pipe; stderr's own flags are shared with the rest of the
// process and stay as they are) or a socket (MSG_DONTWAIT). Anything else,
// a regular file or a terminal, is written the ordinary way.
package nowait

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Writer writes to one file descriptor; see the package comment. Its
// Write is safe for concurrent use if fallback's is.
type Writer struct {
	fd       int       // the descriptor the output is, as the process sees it
	fallback io.Writer // the ordinary write to fd, which may block
	kind     kind

	mu   sync.Mutex
	pipe int     // a non-blocking open of fd's pipe, or -1
	of   fileKey // which pipe that is
}

type kind int

const (
	ordinary kind = iota
	pipe
	socket
)

// fileKey tells files apart: the same pipe has the same device and inode
// in every descriptor open on it.
type fileKey struct{ dev, ino uint64 }

// For returns a Writer to fd, which fallback writes the ordinary way
// (os.Stderr for 2). fd must stay open while the Writer is used.
func For(fd int, fallback io.Writer) *Writer {
	w := &Writer{fd: fd, fallback: fallback, pipe: -1}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err == nil {
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFIFO:
			w.kind = pipe
		case syscall.S_IFSOCK:
			w.kind = socket
		}
	}
	return w
}

// Write writes p whole: by a raw call if the output takes it at once, and
// what the raw call did not write through fallback.
func (w *Writer) Write(p []byte) (int, error) {
	n := 0
	switch w.kind {
	case pipe:
		n = w.writePipe(p)
	case socket:
		n = rawWrite(syscall.SYS_SENDTO, w.fd, p, syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
	}
	if n == len(p) {
		return n, nil
	}
	m, err := w.fallback.Write(p[n:])
	return n + m, err
}

// writePipe writes p to the pipe w.fd is by a raw call on the Writer's
// non-blocking descriptor of it, and returns how much it wrote. It checks
// each time, by one raw fstat, that w.fd is still that pipe: a program may
// point stderr elsewhere (dup2) after it started the proxy. The lock is
// held over the write, so the descriptor is not closed under it.
func (w *Writer) writePipe(p []byte) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if fd := w.pipeFD(); fd >= 0 {
		return rawWrite(syscall.SYS_WRITE, fd, p, 0)
	}
	return 0
}

// pipeFD returns the Writer's non-blocking descriptor of the pipe w.fd is
// now, opened if need be, or -1; with mu held.
func (w *Writer) pipeFD() int {
	var st syscall.Stat_t
	if _, _, e := syscall.RawSyscall(syscall.SYS_FSTAT, uintptr(w.fd), uintptr(unsafe.Pointer(&st)), 0); e != 0 ||
		st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		w.closePipe()
		return -1
	}
	key := fileKey{dev: uint64(st.Dev), ino: st.Ino}
	if w.pipe >= 0 && w.of == key {
		return w.pipe
	}
	w.closePipe()
	// Opening the descriptor's /proc link opens the pipe itself anew: a
	// description of its own, whose O_NONBLOCK no one else sees.
	fd, err := syscall.Open(fmt.Sprintf("/proc/self/fd/%d", w.fd), syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1 // no /proc, or no reader: the ordinary write says what is wrong
	}
	w.pipe, w.of = fd, key
	return fd
}

func (w *Writer) closePipe() {
	if w.pipe >= 0 {
		syscall.Close(w.pipe)
		w.pipe = -1
	}
}

// Close closes the Writer's own descriptor, not fd.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closePipe()
	return nil
}

// rawWrite writes p to fd by one raw call of trap (write, or sendto with
// flags) and returns how much it wrote: 0 when the output would have
// blocked, or on any error, which the ordinary write then meets and
// reports. A pipe takes a write of up to PIPE_BUF bytes whole or not at
// all.
func rawWrite(trap uintptr, fd int, p []byte, flags uintptr) int {
	if len(p) == 0 {
		return 0
	}
	// The pointer is converted in the call expression (unsafe.Pointer's
	// rule 4): p stays where it is until the call returns.
	n, _, e := syscall.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), flags, 0, 0)
	if e != 0 {
		return 0
	}
	return int(n)
}

// Stderr is a Writer for the process's stderr.
func Stderr() *Writer { return For(2, os.Stderr) }
