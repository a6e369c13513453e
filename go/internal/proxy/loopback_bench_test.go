package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/h1"
	"github.com/object-storage-proxy/osp/internal/upstream"
)

// The loopback benchmarks run the proxy as it runs in production, a real
// http.Server and a pooled backend transport over loopback TCP, between a
// raw client and a raw backend that cost next to nothing: their CPU per
// request (cpu-us/op, the whole process) is the proxy's, plus the few
// microseconds BenchmarkLoopbackDirect shows for the raw ends alone. It is
// the Go-side view of bench/run.py's 4 KiB GET on the null backend, for
// profiling.

func BenchmarkLoopbackGET4KiB(b *testing.B) {
	runRawClients(b, loopbackProxy(b, rawBackend(b, 4096)), "/data/object-4k", true, 4096)
}

// loopbackProxy serves the proxy on a loopback port, bucket "data" on
// backend; it returns the proxy's address.
func loopbackProxy(b *testing.B, backend net.Listener) string {
	bucket := &config.Bucket{Host: "127.0.0.1", Port: backend.Addr().(*net.TCPAddr).Port, Scheme: "http",
		AddressingStyle: config.PathStyle, Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}
	// As the server builds it: a backend timeout is always set.
	transport := upstream.New(upstream.Options{ResponseHeaderTimeout: config.DefaultBackendTimeout})
	h := handlerWith(map[string]*config.Bucket{"data": bucket}, nil, transport)
	h.log = quietLog
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &h1.Server{Handler: h, MaxHeaderBytes: 64 << 10} // as the proxy's plain listener
	go srv.Serve(ln)
	b.Cleanup(func() {
		srv.Close()
		transport.Close()
	})
	return ln.Addr().String()
}

// BenchmarkLoopbackPUT4KiB is the upload path: a signed 4 KiB PUT, its
// body checked against its hash on the way to a backend that reads it
// and answers 200.
func BenchmarkLoopbackPUT4KiB(b *testing.B) {
	addr := loopbackProxy(b, rawServer(b, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")))
	runRaw(b, addr, rawRequest(b, "PUT", "http://"+addr+"/data/object-4k", bytes.Repeat([]byte("x"), 4096), true), 0)
}

func BenchmarkLoopbackDirect4KiB(b *testing.B) {
	backend := rawBackend(b, 4096)
	runRawClients(b, backend.Addr().String(), "/data/object-4k", false, 4096)
}

// rawBackend answers every request on its connections with the same
// pre-built 200 response of size bytes.
func rawBackend(b *testing.B, size int) net.Listener {
	return rawServer(b, []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n%s",
		size, strings.Repeat("x", size))))
}

// rawServer reads each request on its connections, its Content-Length
// body included, and answers with response: a backend that costs next to
// nothing.
func rawServer(b *testing.B, response []byte) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					length, err := contentLength(br)
					if err != nil {
						return
					}
					if _, err := br.Discard(length); err != nil {
						return
					}
					if _, err := conn.Write(response); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}

// contentLength reads a request head and returns its Content-Length (0
// if it has none).
func contentLength(br *bufio.Reader) (int, error) {
	length := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			return length, nil
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Content-Length") {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(value)))
		}
	}
}

// runRawClients sends pre-built keep-alive GETs from parallel connections
// and reads each response's head and body.
func runRawClients(b *testing.B, addr, path string, sign bool, size int) {
	runRaw(b, addr, rawRequest(b, "GET", "http://"+addr+path, nil, sign), size)
}

// rawRequest is a request as a client writes it, signed with the client's
// key if sign.
func rawRequest(b *testing.B, method, url string, body []byte, sign bool) []byte {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if sign {
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: clientSecret}, req, hash, "s3", "us-east-1", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	var raw bytes.Buffer
	if err := req.Write(&raw); err != nil {
		b.Fatal(err)
	}
	return raw.Bytes()
}

// runRaw sends raw from parallel keep-alive connections and reads each
// response's head and its body of size bytes.
func runRaw(b *testing.B, addr string, raw []byte, size int) {
	if size <= 1<<20 {
		b.SetParallelism(16) // small requests: many connections, as the bench's x32
	}
	b.ReportAllocs()
	cpuBefore := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 64<<10)
		for pb.Next() {
			if _, err := conn.Write(raw); err != nil {
				b.Error(err)
				return
			}
			if err := readRawResponse(br, size); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((processCPU()-cpuBefore).Microseconds())/float64(b.N), "cpu-us/op")
}

func readRawResponse(br *bufio.Reader, size int) error {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status %q", status)
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Content-Length") {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(value)))
		}
	}
	if length != size {
		return fmt.Errorf("content-length %d, want %d", length, size)
	}
	_, err = br.Discard(length)
	return err
}

// processCPU is the CPU time the process has used, user and system: the
// cost of a request whatever the cores' contention.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoopbackGET64MiB is one 64 MiB GET at a time through the
// proxy: the large-object path (MB/s; compare BenchmarkLoopbackDirect64MiB).
func BenchmarkLoopbackGET64MiB(b *testing.B) {
	addr := loopbackProxy(b, rawBackend(b, 64<<20))
	b.SetBytes(64 << 20)
	runRawClients(b, addr, "/data/object-64m", true, 64<<20)
}

func BenchmarkLoopbackDirect64MiB(b *testing.B) {
	backend := rawBackend(b, 64<<20)
	b.SetBytes(64 << 20)
	runRawClients(b, backend.Addr().String(), "/data/object-64m", false, 64<<20)
}
