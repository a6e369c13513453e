package awschunked

import (
	"io"
	"strings"
	"testing"
)

// TestChunkSizesAreBoundedBeforeTheyAdd checks that a chunk size is
// compared with what is left of the declared length (or S3's 5 GiB limit)
// before it is added to the running total: a size near the int64 limit
// after one valid chunk used to wrap the total negative, pass the check,
// and stream the client's unsigned bytes on as if they were verified.
func TestChunkSizesAreBoundedBeforeTheyAdd(t *testing.T) {
	sig := ";chunk-signature=" + strings.Repeat("0", 64)
	tail := strings.Repeat("E", 2000)
	cases := []struct {
		name, body string
		opts       Options
		code       string
	}{
		{"int64 max after a chunk", "a\r\n0123456789\r\n7fffffffffffffff\r\n" + tail, Options{DecodedLength: 1000}, "IncompleteBody"},
		{"int64 max - 1 after a chunk", "a\r\n0123456789\r\n7ffffffffffffffe\r\n" + tail, Options{DecodedLength: 1000}, "IncompleteBody"},
		{"int64 max, signed", "a" + sig + "\r\n0123456789\r\n7fffffffffffffff" + sig + "\r\n" + tail, Options{DecodedLength: 1000, SkipSignatures: true}, "IncompleteBody"},
		{"int64 max, no declared length", "a\r\n0123456789\r\n7fffffffffffffff\r\n" + tail, Options{DecodedLength: -1}, "EntityTooLarge"},
		{"past what is left", "a\r\n0123456789\r\n3df\r\n" + tail, Options{DecodedLength: 1000}, "IncompleteBody"},
		{"first chunk past the declared length", "3e9\r\n" + tail, Options{DecodedLength: 1000}, "IncompleteBody"},
		{"one chunk past 5 GiB", "140000001\r\n" + tail, Options{DecodedLength: -1}, "EntityTooLarge"},
		{"chunks past 5 GiB together", "a\r\n0123456789\r\n13ffffff7\r\n" + tail, Options{DecodedLength: -1}, "EntityTooLarge"},
		{"uint64 max", "ffffffffffffffff\r\n" + tail, Options{DecodedLength: 1000}, "IncompleteBody"},
		{"int64 min", "8000000000000000\r\n" + tail, Options{DecodedLength: 1000}, "IncompleteBody"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := NewDecoder(strings.NewReader(c.body), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(d)
			if code(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			if strings.Contains(string(out), "E") {
				t.Fatalf("handed out %d bytes of the oversized chunk", strings.Count(string(out), "E"))
			}
		})
	}
}

// TestChunkExactlyWhatIsLeft: a chunk of exactly the bytes still declared
// is fine; the limit is not off by one.
func TestChunkExactlyWhatIsLeft(t *testing.T) {
	body := "a\r\n0123456789\r\n5\r\nabcde\r\n0\r\n\r\n"
	got, err := decodeAll(body, Options{DecodedLength: 15})
	if err != nil || string(got) != "0123456789abcde" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestDeclaredLengthPastS3Limit: an x-amz-decoded-content-length over
// 5 GiB is refused before a byte is read.
func TestDeclaredLengthPastS3Limit(t *testing.T) {
	if _, err := NewDecoder(strings.NewReader(""), Options{DecodedLength: MaxDecodedLength + 1}); code(err) != "EntityTooLarge" {
		t.Fatalf("got %v, want EntityTooLarge", err)
	}
	if _, err := NewDecoder(strings.NewReader(""), Options{DecodedLength: MaxDecodedLength}); err != nil {
		t.Fatalf("exactly 5 GiB: %v", err)
	}
}
