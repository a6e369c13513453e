package awschunked

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// minioTrailerBody frames data as minio-go does with TrailingHeaders: the
// trailer line ends "\n" (what the trailer signature covers) and then CRLF;
// signed, the x-amz-trailer-signature line follows.
func minioTrailerBody(data []byte, trailer, value string, signed bool) string {
	var b strings.Builder
	if !signed {
		fmt.Fprintf(&b, "%x\r\n%s\r\n0\r\n%s:%s\n\r\n\r\n", len(data), data, trailer, value)
		return b.String()
	}
	signer := &chain{prev: "seed"}
	for _, c := range [][]byte{data, nil} {
		sum := sha256.Sum256(c)
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(c), signer.next(sum[:]))
		if len(c) > 0 {
			b.Write(c)
			b.WriteString("\r\n")
		}
	}
	line := trailer + ":" + value + "\n"
	sum := sha256.Sum256([]byte(line))
	fmt.Fprintf(&b, "%s\r\nx-amz-trailer-signature:%s\r\n\r\n", line, signer.next(sum[:]))
	return b.String()
}

func TestTrailerLineEndingLFCRLF(t *testing.T) {
	data := []byte("minio-go trailing checksum body")
	const name = "x-amz-checksum-crc32c"
	sum := checksumOf(name, data)
	for _, signed := range []bool{false, true} {
		opts := Options{Trailer: name, DecodedLength: int64(len(data))}
		if signed {
			opts.Signatures = &chain{prev: "seed"}
		}
		got, err := decodeAll(minioTrailerBody(data, name, sum, signed), opts)
		if err != nil || string(got) != string(data) {
			t.Fatalf("signed=%v: got %q, %v", signed, got, err)
		}
		// The checksum is still checked, and so is the trailer signature.
		if signed {
			opts.Signatures = &chain{prev: "seed"}
		}
		if _, err := decodeAll(minioTrailerBody(data, name, checksumOf(name, data[1:]), signed), opts); code(err) != "BadDigest" && code(err) != "SignatureDoesNotMatch" {
			t.Fatalf("signed=%v, wrong checksum: got %v", signed, err)
		}
	}
}

func TestTrailerLineBareLFStillRefused(t *testing.T) {
	data := []byte("abc")
	const name = "x-amz-checksum-crc32"
	sum := checksumOf(name, data)
	opts := Options{Trailer: name, DecodedLength: 3}
	for label, body := range map[string]string{
		// LF then another line: two lines in one, never taken.
		"LF then a header":   "3\r\nabc\r\n0\r\n" + name + ":" + sum + "\nx-amz-meta-a:b\r\n\r\n",
		"LF then end":        "3\r\nabc\r\n0\r\n" + name + ":" + sum + "\n",
		"LF then LF":         "3\r\nabc\r\n0\r\n" + name + ":" + sum + "\n\n",
		"empty line LF CRLF": "3\r\nabc\r\n0\r\n" + name + ":" + sum + "\r\n\n\r\n",
	} {
		if _, err := decodeAll(body, opts); code(err) != "InvalidRequest" && code(err) != "IncompleteBody" {
			t.Errorf("%s: got %v, want a refusal", label, err)
		}
	}
}
