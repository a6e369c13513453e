package awschunked

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// framedSizes frames chunks of the given sizes, then a final chunk and
// an optional trailer line, as an unsigned aws-chunked body.
func framedSizes(sizes []int, trailer string) (string, int64) {
	var b strings.Builder
	var total int64
	for _, n := range sizes {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, strings.Repeat("a", n))
		total += int64(n)
	}
	b.WriteString("0\r\n")
	if trailer != "" {
		b.WriteString(trailer + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String(), total
}

// S3 (and versitygw's suite) refuse a data chunk under 8 KiB unless it is
// the last one.
func TestSmallChunkButTheLastRefused(t *testing.T) {
	for _, c := range []struct {
		sizes []int
		ok    bool
	}{
		{[]int{8192, 8192, 100}, true},
		{[]int{100}, true},
		{[]int{10000, 9500, 20}, true},
		{[]int{100, 8192, 100}, false},
		{[]int{8192, 10, 100}, false},
		{[]int{10, 10, 10}, false},
		{[]int{8191, 8192}, false},
	} {
		body, n := framedSizes(c.sizes, "")
		_, err := decodeAll(body, Options{DecodedLength: n, MinChunkSize: MinChunkSize})
		if c.ok && err != nil {
			t.Errorf("%v: %v", c.sizes, err)
		}
		if !c.ok && code(err) != "InvalidChunkSizeError" {
			t.Errorf("%v: got %v, want InvalidChunkSizeError", c.sizes, err)
		}
	}
}

// A checksum trailer whose value is not base64 of the right length is
// S3's InvalidRequest; a well-formed wrong one stays BadDigest.
func TestTrailerChecksumOfTheWrongForm(t *testing.T) {
	const name = "x-amz-checksum-crc64nvme"
	for value, want := range map[string]string{
		"invalid_checksum": "InvalidRequest",
		"AAAA":             "InvalidRequest",
		"AAAAAAAAAAA=":     "BadDigest",
	} {
		body, n := framedSizes([]int{5}, name+":"+value)
		if _, err := decodeAll(body, Options{Trailer: name, DecodedLength: n}); code(err) != want {
			t.Errorf("%q: got %v, want %s", value, err, want)
		}
	}
}

// A declared trailer's section must end with its blank line.
func TestDeclaredTrailerSectionCutShort(t *testing.T) {
	const name = "x-amz-checksum-crc32"
	data := []byte("dummy data")
	for _, body := range []string{
		"a\r\ndummy data\r\n0\r\n",
		"a\r\ndummy data\r\n0\r\n" + name + ":" + checksumOf(name, data) + "\r\n",
	} {
		if _, err := decodeAll(body, Options{Trailer: name, DecodedLength: 10}); code(err) != "IncompleteBody" {
			t.Errorf("%q: got %v, want IncompleteBody", body, err)
		}
	}
}

// A chunk longer than what is left of the declared length is a length
// mismatch when framed right, and a broken body when its data is not
// followed by CRLF (as S3 tells them apart); both are refused.
func TestOverrunningChunk(t *testing.T) {
	for body, want := range map[string]string{
		"b\r\nabcdefghijk\r\n0\r\n\r\n": "You did not provide the number of bytes specified by the Content-Length HTTP header",
		"b\r\ndummy data\r\n0\r\n\r\n":  "The request body terminated unexpectedly",
		"b\r\nabc":                      "The request body terminated unexpectedly",
	} {
		_, err := decodeAll(body, Options{DecodedLength: 5})
		var e *s3err.Error
		if !errors.As(err, &e) || e.Code.String() != "IncompleteBody" || e.Message != want {
			t.Errorf("%q: got %v, want IncompleteBody: %s", body, err, want)
		}
	}
}

// A trailer line with a bare CR in it is a broken body, not a value.
func TestTrailerLineWithBareCR(t *testing.T) {
	const name = "x-amz-checksum-crc32"
	body, n := framedSizes([]int{5}, name+":"+checksumOf(name, []byte("aaaaa"))+"\rbcd")
	if _, err := decodeAll(body, Options{Trailer: name, DecodedLength: n}); code(err) != "IncompleteBody" {
		t.Errorf("got %v, want IncompleteBody", err)
	}
}
