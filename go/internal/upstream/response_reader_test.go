package upstream

import (
	"bufio"
	"bytes"

	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// S3-like responses, well-formed and not: the fuzz seeds, and the cases
// TestReadResponseHeadAsReadResponse runs with every method.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/octet-stream\r\nETag: \"abc\"\r\n" +
		"Last-Modified: Sun, 06 Dec 2026 12:00:00 GMT\r\nx-amz-request-id: 1\r\nx-amz-meta-a: 1\r\nX-Amz-Meta-A: 2\r\n\r\nhelloNEXT",
	"HTTP/1.1 204 No Content\r\nx-amz-request-id: 2\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\nNEXT",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nx\r\n0\r\nX-Checksum: y\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n0\r\nX-Sum: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
	"HTTP/1.1 200 OK\r\n\r\nno length",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: 10\r\n\r\n<Error/>\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1  200  OK\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
	"HTTP/1.1 200 OK\r\nFolded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n Leading: space\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nName : x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9 \t\r\nY:\r\nz-lower-case:  v\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"HTTP/1.1 20x OK\r\n\r\n",
	"HTTP/1.1 +20 OK\r\n\r\n",
	"ICY 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",
	"HTTP/1.1 200 OK",
	"",
	"\r\n\r\n",
	"SSH-2.0-OpenSSH\r\n\r\n",
	// More fields than a response's room for their values (response.values).
	"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\n" +
		"K: 11\r\nA: 12\r\nL: 13\r\nM: 14\r\nN: 15\r\nB: 16\r\nContent-Length: 2\r\n\r\nok",
}

func FuzzReadResponseHead(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false, uint16(0))
		f.Add([]byte(s), true, uint16(16))
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool, bufferSize uint16) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		compareWithReadResponse(t, data, method, int(bufferSize))
	})
}

func TestReadResponseHeadAsReadResponse(t *testing.T) {
	for _, s := range responseSeeds {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			for _, size := range []int{0, 16} {
				compareWithReadResponse(t, []byte(s), method, size)
			}
		}
	}
}

// read is what a client learns from a response: the head, the body and
// its trailer, and what is left on the connection after it.
type read struct {
	Status, Proto                        string
	StatusCode, ProtoMajor, ProtoMinor   int
	Header, Trailer                      http.Header
	ContentLength                        int64
	TransferEncoding                     []string
	Close, Uncompressed, RequestIsTheOne bool
	Body, BodyErr, Rest                  string
}

func compareWithReadResponse(t *testing.T, data []byte, method string, bufferSize int) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://backend/b/k", nil)
	// Small buffers (16 bytes or more) send long heads to http.ReadResponse;
	// a reader that returns a byte at a time makes the head arrive in pieces.
	size := 32 << 10
	if bufferSize > 0 {
		size = bufferSize
	}
	newReader := func() *bufio.Reader {
		return bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), size)
	}
	want, wantErr := readOne(newReader(), req, func(br *bufio.Reader) (*http.Response, io.Reader, error) {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, nil, err
		}
		return resp, resp.Body, nil
	})
	got, gotErr := readOne(newReader(), req, func(br *bufio.Reader) (*http.Response, io.Reader, error) {
		resp, f, err := readResponseHead(br, req, new(response))
		return resp, &f, err
	})
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q (%s): http.ReadResponse: %v, readResponseHead: %v", data, method, wantErr, gotErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q (%s):\nreadResponseHead %+v\nhttp.ReadResponse %+v", data, method, got, want)
	}
}

func readOne(br *bufio.Reader, req *http.Request, readHead func(*bufio.Reader) (*http.Response, io.Reader, error)) (read, error) {
	resp, body, err := readHead(br)
	if err != nil {
		return read{}, err
	}
	r := read{Status: resp.Status, Proto: resp.Proto, StatusCode: resp.StatusCode, ProtoMajor: resp.ProtoMajor,
		ProtoMinor: resp.ProtoMinor, Header: resp.Header, ContentLength: resp.ContentLength,
		TransferEncoding: resp.TransferEncoding, Close: resp.Close, Uncompressed: resp.Uncompressed,
		RequestIsTheOne: resp.Request == req}
	if resp.Body == http.NoBody {
		body = http.NoBody
	}
	b, err := io.ReadAll(body)
	r.Body, r.Trailer = string(b), resp.Trailer
	if err != nil {
		r.BodyErr = err.Error()
	} else {
		rest, _ := io.ReadAll(br)
		r.Rest = string(rest)
	}
	return r, nil
}

// The heads of S3's answers take the direct path.
func TestPlainHeadsAreParsedDirectly(t *testing.T) {
	for _, s := range append(responseSeeds[:5:5], responseSeeds[len(responseSeeds)-1]) {
		head, _ := peekHead(bufio.NewReader(strings.NewReader(s)))
		if _, _, ok := parseHead(string(head), nil, new(response)); !ok {
			t.Errorf("%q went by http.ReadResponse", s)
		}
	}
}

func BenchmarkReadResponseHead(b *testing.B) {
	for _, impl := range []string{"direct", "ReadResponse"} {
		b.Run(impl, func(b *testing.B) {
			msg := responseSeeds[0]
			src := strings.NewReader(msg)
			br := bufio.NewReader(src)
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(msg)
				br.Reset(src)
				var err error
				if impl == "direct" {
					_, _, err = readResponseHead(br, nil, new(response))
				} else {
					_, err = http.ReadResponse(br, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
