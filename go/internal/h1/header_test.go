package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// FuzzWriteHeader holds writeHeader to http.Header.Write: the same bytes
// for any header. The input is names and values, one after the other,
// separated by NUL bytes.
func FuzzWriteHeader(f *testing.F) {
	for _, seed := range []string{
		"Content-Length\x004096\x00Etag\x00\"abc\"\x00Last-Modified\x00Thu, 01 Jan 2026 00:00:00 GMT",
		"X-A\x00 padded \t\x00X-A\x00second\x00x-lower\x00v",
		"X-Split\x00a\r\nInjected: 1\x00X-Cr\x00a\rb\x00X-Lf\x00\n",
		"Bad Name\x00v\x00\x00empty name\x00Caf\xc3\xa9\x00v\x00X-Empty\x00",
		"B\x001\x00A\x002\x00C\x003\x00a\x004\x00D\x005\x00E\x006\x00F\x007\x00G\x008\x00H\x009\x00I\x0010\x00J\x0011\x00K\x0012\x00L\x0013\x00M\x0014\x00N\x0015\x00O\x0016\x00P\x0017\x00Q\x0018",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		h := http.Header{}
		parts := bytes.Split(input, []byte{0})
		for i := 0; i+1 < len(parts); i += 2 {
			name := string(parts[i])
			h[name] = append(h[name], string(parts[i+1]))
		}
		var got, want bytes.Buffer
		bw := bufio.NewWriter(&got)
		writeHeader(bw, h)
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := h.Write(&want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("for %q, writeHeader wrote\n%q\nHeader.Write\n%q", h, got.Bytes(), want.Bytes())
		}
	})
}
