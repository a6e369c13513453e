package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end of it.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := (<-accepted).(*net.TCPConn)
	w, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	t.Cleanup(func() { _ = w.Close(); _ = peer.Close() })
	return w, peer
}

func TestReadWriteRoundTrip(t *testing.T) {
	c, peer := pair(t)
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(c, buf, 5)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	if n, err := c.Write([]byte("world")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "world" {
		t.Fatalf("peer read %q, %v", got, err)
	}
}

// A write larger than the socket's buffers waits for the peer to read
// (EAGAIN, then the poller) and sends every byte, in order.
func TestLargeWriteWaitsForThePeer(t *testing.T) {
	c, peer := pair(t)
	_ = c.SetWriteBuffer(16 << 10)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte)
	go func() {
		time.Sleep(50 * time.Millisecond) // the writer fills the buffers first
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(data))))
		got <- b
	}()
	n, err := c.Write(data)
	if n != len(data) || err != nil {
		t.Fatalf("write: %d of %d, %v", n, len(data), err)
	}
	if !bytes.Equal(<-got, data) {
		t.Fatal("the peer read other bytes")
	}
}

func TestEndOfStreamIsEOF(t *testing.T) {
	c, peer := pair(t)
	_ = peer.Close()
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v (want io.EOF)", n, err)
	}
}

func TestDeadlineIsATimeout(t *testing.T) {
	c, _ := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v (want a timeout)", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %v is not named as a read", err)
	}
	// A deadline in the past wakes a read that waits (the proxy stops a
	// watch on the client this way).
	_ = c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 8)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	_ = c.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("woken read: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline in the past did not wake the read")
	}
}

func TestResetIsECONNRESET(t *testing.T) {
	c, peer := pair(t)
	_ = peer.SetLinger(0)
	_ = peer.Close() // RST
	_, err := c.Read(make([]byte, 8))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a reset: %v (want ECONNRESET)", err)
	}
	_, err = c.Write([]byte("x"))
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write after a reset: %v (want EPIPE or ECONNRESET)", err)
	}
}

func TestClosedIsErrClosed(t *testing.T) {
	c, _ := pair(t)
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 8)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	_ = c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v (want net.ErrClosed)", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed connection: %v (want net.ErrClosed)", err)
	}
}

// Reads and writes from several goroutines at once keep every byte (run
// with -race: the per-direction state is guarded).
func TestConcurrentUse(t *testing.T) {
	c, peer := pair(t)
	go func() { _, _ = io.Copy(peer, peer) }() // echo
	const writers, each = 4, 1000
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := c.Write([]byte("abcd")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	total := 0
	var rg sync.WaitGroup
	for range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			buf := make([]byte, 64)
			for {
				mu.Lock()
				if total == writers*each*4 {
					mu.Unlock()
					return
				}
				mu.Unlock()
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := c.Read(buf)
				mu.Lock()
				total += n
				mu.Unlock()
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Error(err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	rg.Wait()
	if total != writers*each*4 {
		t.Fatalf("read %d bytes of %d", total, writers*each*4)
	}
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a pipe was wrapped")
	}
	if _, ok := TCP(a); ok {
		t.Fatal("TCP found a TCP connection in a pipe")
	}
	c, _ := pair(t)
	if tcp, ok := TCP(c); !ok || tcp != c.TCPConn {
		t.Fatal("TCP did not unwrap a Conn")
	}
}

// ReadFrom stays the TCP connection's (the kernel's splice for a body
// from another socket): every byte arrives.
func TestReadFromAnotherSocket(t *testing.T) {
	c, peer := pair(t)
	src, srcPeer := pair(t)
	data := bytes.Repeat([]byte("z"), 1<<20)
	go func() { _, _ = srcPeer.Write(data); _ = srcPeer.Close() }()
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(io.LimitReader(peer, int64(len(data)))); got <- b }()
	n, err := c.ReadFrom(&io.LimitedReader{R: src.TCPConn, N: int64(len(data))})
	if n != int64(len(data)) || err != nil {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	if !bytes.Equal(<-got, data) {
		t.Fatal("the peer read other bytes")
	}
}

func BenchmarkWriteRead(b *testing.B) {
	for _, name := range []string{"net", "raw"} {
		b.Run(name, func(b *testing.B) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			defer ln.Close()
			go func() {
				s, _ := ln.Accept()
				_, _ = io.Copy(s, s)
			}()
			nc, _ := net.Dial("tcp", ln.Addr().String())
			c := nc
			if name == "raw" {
				c = Wrap(nc)
			}
			defer c.Close()
			msg := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = c.Write(msg)
				_, _ = io.ReadFull(c, msg)
			}
		})
	}
}

// arrived waits until the socket under c has something to read, or its
// end, without reading it.
func arrived(t *testing.T, c *Conn) {
	t.Helper()
	raw, err := c.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Microsecond) {
		seen := false
		_ = raw.Control(func(fd uintptr) {
			var b [1]byte
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			seen = err != syscall.EAGAIN
		})
		if seen {
			return
		}
	}
	t.Fatal("nothing arrived")
}

// ReadAfter's answers come back in order, even an answer that is there
// before send returns: it wakes the wait.
func TestReadAfterSeesEveryAnswer(t *testing.T) {
	c, peer := pair(t)
	go func() { _, _ = io.Copy(peer, peer) }() // answers each byte at once
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for i := range 2000 {
		msg := []byte{byte(i), byte(i >> 8)}
		got := 0
		send := func() error {
			_, err := c.Write(msg)
			if i%2 == 0 {
				arrived(t, c) // the answer is in before the wait
			}
			return err
		}
		n, err := c.ReadAfter(send, buf)
		for ; err == nil; n, err = c.Read(buf[got:]) {
			got += n
			if got >= len(msg) {
				break
			}
		}
		if err != nil || !bytes.Equal(buf[:got], msg) {
			t.Fatalf("exchange %d: read %q, %v (want %q)", i, buf[:got], err, msg)
		}
	}
}

// send's error ends ReadAfter before it reads, as send returned it.
func TestReadAfterReturnsTheSendError(t *testing.T) {
	c, _ := pair(t)
	failed := errors.New("no request")
	n, err := c.ReadAfter(func() error { return failed }, make([]byte, 8))
	if n != 0 || err != failed {
		t.Fatalf("ReadAfter with a failing send: %d, %v", n, err)
	}
	// The connection reads as before.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after: %v", err)
	}
}

// A peer's end that comes after send is seen: a reused connection the
// backend closed answers a request with a reset (or an end).
func TestReadAfterSeesTheEnd(t *testing.T) {
	c, peer := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.ReadAfter(func() error {
		_, err := c.Write([]byte("GET"))
		_ = peer.Close()
		arrived(t, c) // the end is in before the wait
		return err
	}, make([]byte, 8))
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("ReadAfter on a connection the peer closed: %v (want EOF or a reset)", err)
	}
}

// A deadline ends ReadAfter's wait as it ends Read's.
func TestReadAfterKeepsTheDeadline(t *testing.T) {
	c, _ := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.ReadAfter(func() error { _, err := c.Write([]byte("x")); return err }, make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadAfter past its deadline: %v", err)
	}
}

// NothingToRead sees data and the peer's end without reading either.
func TestNothingToRead(t *testing.T) {
	c, peer := pair(t)
	raw, err := c.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	nothing := func() (n bool) {
		_ = raw.Control(func(fd uintptr) { n = NothingToRead(fd) })
		return n
	}
	if !nothing() {
		t.Fatal("an open, quiet connection has something to read")
	}
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	arrived(t, c)
	if nothing() {
		t.Fatal("data waiting, but nothing to read")
	}
	b := make([]byte, 1)
	if n, err := c.Read(b); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("read %q, %v: the peeked byte was not left to read", b[:n], err)
	}
	_ = peer.Close()
	arrived(t, c)
	if nothing() {
		t.Fatal("the peer's end waiting, but nothing to read")
	}
}
