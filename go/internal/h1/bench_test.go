package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// BenchmarkServeSmallGET measures what h1 itself costs a small request: one
// keep-alive client on loopback sends a GET with the fields an S3 client
// signs, and the handler answers 4 KiB with a Content-Length. The client
// reads the answer raw, so that allocs/op are (nearly all) the server's.
func BenchmarkServeSmallGET(b *testing.B) {
	const size = 4096
	body := bytes.Repeat([]byte("x"), size)
	addr, _ := serve(b, newServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	}), nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	request := []byte("GET /bucket/object-4k HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: bench\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, " +
		"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n" +
		"X-Amz-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n" +
		"X-Amz-Date: 20260101T000000Z\r\nAccept-Encoding: gzip\r\n\r\n")
	br := bufio.NewReaderSize(conn, 16<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(request); err != nil {
			b.Fatal(err)
		}
		if err := skipResponse(br, size); err != nil {
			b.Fatal(err)
		}
	}
}

// skipResponse reads an answer's head, up to its empty line, and a body
// of size bytes.
func skipResponse(br *bufio.Reader, size int) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
	}
	_, err := br.Discard(size)
	if err == nil {
		return nil
	}
	return io.ErrUnexpectedEOF
}

// BenchmarkParseHead is parseHead alone, on the head of
// BenchmarkServeSmallGET with the field names a botocore client sends,
// some of them not in canonical form.
func BenchmarkParseHead(b *testing.B) {
	head := []byte("GET /bucket/object-4k HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nAccept-Encoding: identity\r\n" +
		"User-Agent: Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.0\r\n" +
		"X-Amz-Date: 20260101T000000Z\r\nX-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, " +
		"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n" +
		"amz-sdk-invocation-id: 0b4c7d2e-6f1a-4b8e-9c3d-2a5f7e9b1c4d\r\namz-sdk-request: attempt=1\r\n\r\n")
	b.ReportAllocs()
	for range b.N {
		if _, _, ok := parseHead(head, nil, new(exchange)); !ok {
			b.Fatal("parseHead refused the head")
		}
	}
}

// BenchmarkServeInMemory is h1's own work for the request of
// BenchmarkServeSmallGET, without the sockets: the connection is in
// memory, giving the request whenever h1 reads and dropping what it
// writes. Its instruction count (valgrind --tool=cachegrind) is steady
// where time on a shared machine is not.
func BenchmarkServeInMemory(b *testing.B) {
	const size = 4096
	body := bytes.Repeat([]byte("x"), size)
	srv := newServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	})
	srv.init()
	request := []byte("GET /bucket/object-4k HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUser-Agent: bench\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, " +
		"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n" +
		"X-Amz-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n" +
		"X-Amz-Date: 20260101T000000Z\r\nAccept-Encoding: gzip\r\n\r\n")
	conn := &memConn{request: request, left: b.N}
	c := newConn(srv, conn)
	srv.track(c)
	b.ReportAllocs()
	b.ResetTimer()
	c.serve()
	if conn.left > 0 || conn.answers != b.N {
		b.Fatalf("%d requests not sent, %d answers of %d", conn.left, conn.answers, b.N)
	}
}

// memConn is a connection in memory for BenchmarkServeInMemory: each read
// gives the whole request, left times, then io.EOF; writes are counted.
type memConn struct {
	net.Conn // not called
	request  []byte
	left     int
	answers  int
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	c.left--
	return copy(p, c.request), nil
}

func (c *memConn) Write(p []byte) (int, error) {
	c.answers++
	return len(p), nil
}

func (c *memConn) Close() error                     { return nil }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
