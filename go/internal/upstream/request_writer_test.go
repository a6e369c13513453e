package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// requestCase builds a request afresh (a body is read once).
type requestCase struct {
	name string
	make func() *http.Request
}

func newRequest(method, target string, body io.Reader, length int64) *http.Request {
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		panic(err)
	}
	req.ContentLength = length
	return req
}

// slowBody hides a reader's type: not one net/http knows to be in memory.
type slowBody struct{ io.Reader }

func writerCases() []requestCase {
	signed := func(req *http.Request) *http.Request {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
		req.Header.Set("X-Amz-Date", "20260101T000000Z")
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		req.Header["X-Amz-Meta-Two"] = []string{"first", "second"}
		return req
	}
	// The proxy's own URLs: Path and its SigV4 encoding in RawPath.
	escaped := func() *http.Request {
		return signed(&http.Request{Method: "GET", Host: "bucket.s3.example:9000", Header: http.Header{},
			URL: &url.URL{Scheme: "http", Host: "bucket.s3.example:9000", Path: "/b/a key/ü+é", RawPath: "/b/a%20key/%C3%BC%2B%C3%A9",
				RawQuery: "list-type=2&prefix=a%2Fb"}})
	}
	return []requestCase{
		{"GET no body", func() *http.Request { return signed(newRequest("GET", "http://h:9000/b/k", nil, 0)) }},
		{"HEAD", func() *http.Request { return newRequest("HEAD", "http://h/b/k", nil, 0) }},
		{"DELETE", func() *http.Request { return newRequest("DELETE", "http://h/b/k?uploadId=x", nil, 0) }},
		{"PUT length", func() *http.Request {
			return signed(newRequest("PUT", "http://h/b/k", slowBody{strings.NewReader("hello world")}, 11))
		}},
		{"PUT in-memory body", func() *http.Request { return newRequest("PUT", "http://h/b/k", strings.NewReader("abc"), 3) }},
		{"PUT Content-Length 0", func() *http.Request { return newRequest("PUT", "http://h/b/k", http.NoBody, 0) }},
		{"PUT nil body", func() *http.Request { return newRequest("PUT", "http://h/b/k", nil, 0) }},
		{"POST empty", func() *http.Request { return newRequest("POST", "http://h/b/k?uploads", nil, 0) }},
		{"POST chunked", func() *http.Request {
			return newRequest("POST", "http://h/b/k?delete", iotest.OneByteReader(strings.NewReader("<Delete/>")), -1)
		}},
		{"PUT chunked large", func() *http.Request {
			return newRequest("PUT", "http://h/b/k", slowBody{strings.NewReader(strings.Repeat("x", 300<<10))}, -1)
		}},
		{"PUT chunked empty", func() *http.Request { return newRequest("PUT", "http://h/b/k", slowBody{strings.NewReader("")}, -1) }},
		{"Host differs from URL", func() *http.Request {
			req := newRequest("GET", "http://127.0.0.1:9000/k", nil, 0)
			req.Host = "bucket.example.com"
			return req
		}},
		{"escaped path and query", escaped},
		{"invalid escaping in RawPath", func() *http.Request {
			req := escaped()
			req.URL.RawPath = "/b/a%zz"
			return req
		}},
		{"empty path, forced query", func() *http.Request {
			return &http.Request{Method: "GET", Header: http.Header{}, URL: &url.URL{Scheme: "http", Host: "h", ForceQuery: true}}
		}},
		{"no method", func() *http.Request { return &http.Request{Header: http.Header{}, URL: &url.URL{Host: "h", Path: "/"}} }},
		{"values to clean", func() *http.Request {
			req := newRequest("GET", "http://h/", nil, 0)
			req.Header["X-Spaces"] = []string{"  padded\t", "a\r\nInjected: yes", ""}
			req.Header["Bad Name"] = []string{"dropped"}
			req.Header["User-Agent"] = []string{" agent/1 "}
			req.Header["Content-Length"] = []string{"99"} // the request's own length wins
			req.Header["Transfer-Encoding"] = []string{"chunked"}
			req.Header["Host"] = []string{"other"}
			return req
		}},
		{"blank User-Agent", func() *http.Request {
			req := newRequest("GET", "http://h/", nil, 0)
			req.Header["User-Agent"] = []string{" "}
			return req
		}},
		{"empty User-Agent", func() *http.Request {
			req := newRequest("GET", "http://h/", nil, 0)
			req.Header["User-Agent"] = []string{""}
			return req
		}},
		// Not covered: req.Write writes these (and its refusals) itself.
		{"GET body of unknown length", func() *http.Request { return newRequest("GET", "http://h/", strings.NewReader("x"), -1) }},
		{"Close", func() *http.Request { req := newRequest("GET", "http://h/", nil, 0); req.Close = true; return req }},
		{"IDN host", func() *http.Request { return newRequest("GET", "http://bücher.example/", nil, 0) }},
		{"IPv6 zone", func() *http.Request { return newRequest("GET", "http://[fe80::1%25eth0]:80/", nil, 0) }},
		{"body longer than announced", func() *http.Request {
			return newRequest("PUT", "http://h/", slowBody{strings.NewReader("toolong")}, 3)
		}},
		{"body shorter than announced", func() *http.Request {
			return newRequest("PUT", "http://h/", slowBody{strings.NewReader("ab")}, 3)
		}},
		{"control character in query", func() *http.Request {
			return &http.Request{Method: "GET", Header: http.Header{}, URL: &url.URL{Host: "h", Path: "/", RawQuery: "a=\n"}}
		}},
	}
}

// written is a request as a server reads it back (or why it cannot), or
// the writer's error.
type written struct {
	Method, RequestURI, Host string
	Header                   http.Header
	ContentLength            int64
	TransferEncoding         []string
	Body, Rest               string
	Err, ParseErr            string
}

func writeAndRead(t *testing.T, write func(*bufio.Writer, *http.Request) error, req *http.Request) written {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	err := write(bw, req)
	bw.Flush()
	if err != nil {
		return written{Err: err.Error()}
	}
	got, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		return written{ParseErr: err.Error()}
	}
	body, err := io.ReadAll(got.Body)
	if err != nil {
		return written{ParseErr: "body: " + err.Error()}
	}
	return written{got.Method, got.RequestURI, got.Host, got.Header, got.ContentLength, got.TransferEncoding,
		string(body), buf.String(), "", ""}
}

func TestWriteRequestAsRequestWrite(t *testing.T) {
	for _, c := range writerCases() {
		t.Run(c.name, func(t *testing.T) {
			want := writeAndRead(t, func(w *bufio.Writer, r *http.Request) error { return r.Write(w) }, c.make())
			got := writeAndRead(t, writeRequest, c.make())
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("writeRequest sent\n%+v\nreq.Write\n%+v", got, want)
			}
			if small := writeAndRead(t, writeSmall, c.make()); !reflect.DeepEqual(small, want) {
				t.Fatalf("with its body read ahead, writeRequest sent\n%+v\nreq.Write\n%+v", small, want)
			}
			if got.ParseErr != "" || got.Rest != "" {
				t.Fatalf("a server reads the request as %+v", got)
			}
		})
	}
}

// The proxy's requests take the direct path, and it allocates nothing.
func TestWriteRequestAllocations(t *testing.T) {
	req := writerCases()[0].make()
	bw := bufio.NewWriter(io.Discard)
	if n := testing.AllocsPerRun(100, func() { _ = writeRequest(bw, req) }); n != 0 {
		t.Fatalf("%v allocations per request head", n)
	}
}

// FuzzWriteRequest: for any request, writeRequest and req.Write send the
// same request, or both fail; and so does RoundTrip's way with a small
// body (read ahead, then sent with the head).
func FuzzWriteRequest(f *testing.F) {
	f.Add("GET", "h:9000", "/b/a key", "/b/a%20key", "x=1", "X-Amz-Date", "20260101T000000Z", "", int8(0))
	f.Add("PUT", "bucket.h", "/k", "", "", "User-Agent", " ua ", "body", int8(4))
	f.Add("POST", "[::1]:80", "/k", "", "uploads", "Content-Length", "9", "xml", int8(-1))
	f.Add("DELETE", "h\x00", "/k\n", "", "a=\r", "Bad Name", "v\r\nw", "", int8(0))
	f.Fuzz(func(t *testing.T, method, host, path, rawPath, rawQuery, name, value, body string, length int8) {
		make := func() *http.Request {
			req := &http.Request{Method: method, Host: host, Header: http.Header{name: {value, value + "2"}},
				URL: &url.URL{Scheme: "http", Host: "backend:9000", Path: path, RawPath: rawPath, RawQuery: rawQuery}}
			if body != "" || length != 0 {
				req.Body, req.ContentLength = io.NopCloser(slowBody{strings.NewReader(body)}), int64(length)
			}
			return req
		}
		want := writeAndRead(t, func(w *bufio.Writer, r *http.Request) error { return r.Write(w) }, make())
		got := writeAndRead(t, writeRequest, make())
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("writeRequest sent\n%+v\nreq.Write\n%+v", got, want)
		}
		if small := writeAndRead(t, writeSmall, make()); !reflect.DeepEqual(small, want) {
			t.Fatalf("with its body read ahead, writeRequest sent\n%+v\nreq.Write\n%+v", small, want)
		}
	})
}
