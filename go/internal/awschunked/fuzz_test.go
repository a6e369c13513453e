package awschunked

import (
	"io"
	"strings"
	"testing"
)

// FuzzDecoder feeds arbitrary bodies to the aws-chunked decoder, signed and
// unsigned, with and without a trailer: it must never panic, never hand out
// more than the declared decoded length, and end either cleanly or with an
// S3 error.
func FuzzDecoder(f *testing.F) {
	f.Add(framed([]byte("hello world"), 4, "x-amz-checksum-crc32"), true, false)
	f.Add(framed([]byte("hello"), 5, ""), false, false)
	f.Add(signedBody([][]byte{[]byte("abc"), []byte("de")}, -1), false, true)
	f.Add("5;chunk-signature=\r\n\r\n0\r\n\r\n", false, true)
	f.Add("ffffffff\r\n", false, false)
	f.Fuzz(func(t *testing.T, body string, trailer, signed bool) {
		opts := Options{DecodedLength: 64}
		if trailer {
			opts.Trailer = "x-amz-checksum-crc32"
		}
		if signed {
			opts.Signatures = &chain{prev: "seed"}
		}
		d, err := NewDecoder(strings.NewReader(body), opts)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(io.LimitReader(d, 1<<20))
		if len(out) > 64 {
			t.Fatalf("decoded %d bytes past the declared 64", len(out))
		}
		if err != nil && code(err) == "" {
			t.Fatalf("error without an S3 code: %v", err)
		}
		if err == nil && len(out) != 64 {
			t.Fatalf("clean end after %d of 64 bytes", len(out))
		}
	})
}
