// Package sockio reads and writes TCP sockets by raw system calls.
//
// A Go program's read or write on a socket tells the scheduler it is in
// a system call, and the scheduler's monitor hands the processor to
// another thread when the call takes longer than about 20 µs. On
// loopback, and on any busy host, a write does the receiver's TCP work
// inline and often takes that long; under load the proxy then spends as
// much in waking and parking threads (futex, nanosleep) as in the writes
// themselves. A read or write on a non-blocking socket never blocks, so
// making it without that notice costs nothing and saves the hand-off;
// when the socket is not ready, the goroutine waits in the network poller
// as usual (syscall.RawConn), so deadlines and Close behave as with
// net.TCPConn.
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a TCP connection whose Read and Write make raw system calls.
// Its other methods, ReadFrom (splice, sendfile) among them, are the
// TCPConn's.
type Conn struct {
	*net.TCPConn
	raw        syscall.RawConn
	rd         call // guarded by rdMu: net.Conn allows concurrent Reads
	wr         call // guarded by wrMu
	rdMu, wrMu sync.Mutex

	// ReadAfter's, guarded by rdMu.
	send      func() error // runs first in the read's wait; nil once run
	sendErr   error        // what send returned
	sendFirst func(fd uintptr) bool
}

// Wrap returns c reading and writing by raw system calls if it is a TCP
// connection, else c itself.
func Wrap(c net.Conn) net.Conn {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return c
	}
	s := &Conn{TCPConn: tcp, raw: raw}
	s.rd.trap, s.wr.trap = syscall.SYS_READ, syscall.SYS_WRITE
	// Method values made once: made per call they would be allocations.
	s.rd.try, s.wr.try = s.rd.once, s.wr.once
	s.sendFirst = s.sendThenRead
	return s
}

// TCP returns the TCP connection under c: c itself, or the one a Conn
// wraps.
func TCP(c net.Conn) (*net.TCPConn, bool) {
	switch c := c.(type) {
	case *net.TCPConn:
		return c, true
	case *Conn:
		return c.TCPConn, true
	}
	return nil, false
}

// call is one direction's system call: its buffer, and what the last try
// returned.
type call struct {
	trap  uintptr // SYS_READ or SYS_WRITE
	p     []byte  // not empty while a try can run
	n     int
	errno syscall.Errno
	try   func(fd uintptr) bool
}

// once makes the call on fd, and reports false, to wait for the socket,
// if it is not ready.
func (c *call) once(fd uintptr) bool {
	for {
		// The pointer is converted in the call expression, as
		// unsafe.Pointer's rule 4 requires. The buffer is on the heap
		// (stored in c.p, it escapes), where nothing moves, and c.p
		// keeps it reachable until the call returns.
		r, _, e := syscall.RawSyscall(c.trap, fd, uintptr(unsafe.Pointer(&c.p[0])), uintptr(len(c.p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			c.n, c.errno = int(r), 0
		default:
			c.n, c.errno = 0, e
		}
		return true
	}
}

// Read reads as net.TCPConn does.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	return c.read(p, c.rd.try)
}

// ReadAfter runs send (which writes to c), then reads into p as Read
// does, except that it waits for the socket to be readable before it
// first tries. For the answer to a request that send writes, the read
// Read would try first, before the answer can have come, is one system
// call saved, and one return to the poller: Go's poller forgets a
// socket's readiness as a read begins, so a read must try before it
// waits, unless nothing it waits for can have arrived before it began.
// send runs after that point, inside the read, so whatever it provokes
// wakes the wait.
//
// So ReadAfter is only for a connection on which nothing is due before
// send's bytes are out: a peer's data or end that arrived before the
// call, not read, is not seen until something else arrives (the peer's
// answer, its reset of a closed connection, or the read deadline). An
// error of send ends the read, which returns it as is.
func (c *Conn) ReadAfter(send func() error, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, send()
	}
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	c.send, c.sendErr = send, nil
	n, err := c.read(p, c.sendFirst)
	c.send = nil
	if c.sendErr != nil {
		return 0, c.sendErr
	}
	return n, err
}

// sendThenRead is ReadAfter's try: the first runs send and then waits; the
// others read.
func (c *Conn) sendThenRead(fd uintptr) bool {
	if send := c.send; send != nil {
		c.send = nil
		c.sendErr = send()
		return c.sendErr != nil
	}
	return c.rd.once(fd)
}

// read makes the reads of p by try, with rdMu held.
func (c *Conn) read(p []byte, try func(fd uintptr) bool) (int, error) {
	c.rd.p = p
	err := c.raw.Read(try)
	c.rd.p = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case c.rd.errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", c.rd.errno))
	case c.rd.n == 0:
		return 0, io.EOF
	}
	return c.rd.n, nil
}

// Write writes all of p, as net.TCPConn does.
func (c *Conn) Write(p []byte) (int, error) {
	c.wrMu.Lock()
	defer c.wrMu.Unlock()
	written := 0
	for len(p) > 0 {
		c.wr.p = p
		err := c.raw.Write(c.wr.try)
		c.wr.p = nil
		switch {
		case err != nil:
			return written, c.opError("write", err)
		case c.wr.errno != 0:
			return written, c.opError("write", os.NewSyscallError("write", c.wr.errno))
		}
		written += c.wr.n
		p = p[c.wr.n:]
	}
	return written, nil
}

// opError is err as net.TCPConn's Read or Write reports it: the
// RawConn's own errors (a deadline, a closed connection) come named
// "raw-read" or "raw-write", re-named here for the logs.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// NothingToRead reports whether nothing, not even the peer's end or an
// error, waits to be read on the socket fd: a recv of one byte with
// MSG_PEEK and MSG_DONTWAIT, which reads nothing and never blocks. It is a
// raw system call for the reason Read's are: through syscall.Recvfrom,
// each check woke the scheduler's monitor thread (entersyscall), a futex
// call and a thread switch per small upload that the proxy checks.
func NothingToRead(fd uintptr) bool {
	var b [1]byte
	for {
		// The pointer is converted in the call expression (unsafe.Pointer's
		// rule 4): b stays where it is until the call returns.
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e != syscall.EINTR {
			return e == syscall.EAGAIN
		}
	}
}
