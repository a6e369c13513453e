package awschunked

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

func code(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	return ""
}

func TestChecksumCheckValues(t *testing.T) {
	// The standard check values: each checksum of "123456789".
	want := map[string]string{
		"x-amz-checksum-crc32":     "cbf43926",
		"x-amz-checksum-crc32c":    "e3069283",
		"x-amz-checksum-crc64nvme": "ae8b14860a799888",
		"x-amz-checksum-sha1":      "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
		"x-amz-checksum-sha256":    "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
		"x-amz-checksum-sha512":    "d9e6762dd1c8eaf6d61b3c6192fc408d4d6d5f1176d0c29169bc24e71c3f274ad27fcd5811b313d681f7e55ec02d73d499c95455b6b5bb503acf574fba8ffe85",
		"x-amz-checksum-md5":       "25f9e794323b453885f5181f1b624d0b",
	}
	for name, hexSum := range want {
		h, ok := NewChecksum(name)
		if !ok {
			t.Fatalf("%s unknown", name)
		}
		h.Write([]byte("123456789"))
		if got := fmt.Sprintf("%x", h.Sum(nil)); got != hexSum {
			t.Errorf("%s = %s, want %s", name, got, hexSum)
		}
	}
	// The xxhash family, as versitygw's own suite has them for "the object
	// data" (SignedStreamingPayloadTrailer_success), base64 as on the wire.
	for name, b64 := range map[string]string{
		"x-amz-checksum-xxhash64":  "McmxUfNFLUs=",
		"x-amz-checksum-xxhash3":   "tLh+aNltTM4=",
		"x-amz-checksum-xxhash128": "MXqrLVobrQkTBf82+7i9AQ==",
	} {
		h, ok := NewChecksum(name)
		if !ok {
			t.Fatalf("%s unknown", name)
		}
		h.Write([]byte("the object data"))
		if got := encodeChecksum(h); got != b64 {
			t.Errorf("%s = %s, want %s", name, got, b64)
		}
	}
	if _, ok := NewChecksum("x-amz-checksum-md4"); ok {
		t.Error("md4 is not an S3 checksum")
	}
}

// unsignedBody frames data in chunks of size n with an optional trailer.
func unsignedBody(data []byte, n int, trailer string) string {
	var b strings.Builder
	for len(data) > 0 {
		c := data[:min(n, len(data))]
		data = data[len(c):]
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
	}
	b.WriteString("0\r\n")
	if trailer != "" {
		b.WriteString(trailer + ":" + "PLACEHOLDER" + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func checksumOf(name string, data []byte) string {
	h, _ := NewChecksum(name)
	h.Write(data)
	return encodeChecksum(h)
}

func framed(data []byte, n int, trailer string) string {
	body := unsignedBody(data, n, trailer)
	if trailer != "" {
		body = strings.Replace(body, "PLACEHOLDER", checksumOf(trailer, data), 1)
	}
	return body
}

func decodeAll(body string, opts Options) ([]byte, error) {
	d, err := NewDecoder(strings.NewReader(body), opts)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(d)
}

func TestDecodeAndReencode(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes
	for _, trailer := range []string{"", "x-amz-checksum-crc32", "x-amz-checksum-crc64nvme", "x-amz-checksum-sha256"} {
		for _, size := range []int{0, 1, 8192, len(data)} {
			payload := data[:size]
			body := framed(payload, 8000, trailer)
			opts := Options{Trailer: trailer, DecodedLength: int64(size)}
			got, err := decodeAll(body, opts)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("trailer %q size %d: decode err %v, equal %v", trailer, size, err, bytes.Equal(got, payload))
			}
			// Re-framed for the backend: its length is known up front and
			// decoding it gives the same bytes and trailer back.
			d, _ := NewDecoder(strings.NewReader(body), opts)
			enc, err := io.ReadAll(NewEncoder(d, int64(size)))
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if want, _ := EncodedLength(int64(size), trailer); int64(len(enc)) != want {
				t.Fatalf("trailer %q size %d: encoded %d bytes, EncodedLength says %d", trailer, size, len(enc), want)
			}
			again, err := decodeAll(string(enc), opts)
			if err != nil || !bytes.Equal(again, payload) {
				t.Fatalf("re-encoded body does not decode: %v", err)
			}
		}
	}
}

func TestDecodeRejections(t *testing.T) {
	data := []byte(strings.Repeat("x", 100))
	good := framed(data, 40, "x-amz-checksum-crc32")
	cases := []struct {
		name, body string
		opts       Options
		code       string
	}{
		{"bad checksum", strings.Replace(good, checksumOf("x-amz-checksum-crc32", data), checksumOf("x-amz-checksum-crc32", data[1:]), 1), Options{Trailer: "x-amz-checksum-crc32", DecodedLength: 100}, "BadDigest"},
		{"trailer missing", framed(data, 40, ""), Options{Trailer: "x-amz-checksum-crc32", DecodedLength: 100}, "MalformedTrailerError"},
		{"undeclared trailer", good, Options{DecodedLength: 100}, "MalformedTrailerError"},
		{"truncated mid-chunk", good[:30], Options{Trailer: "x-amz-checksum-crc32", DecodedLength: 100}, "IncompleteBody"},
		{"no final chunk", framed(data, 40, "")[:len(framed(data, 40, ""))-5], Options{DecodedLength: 100}, "IncompleteBody"},
		{"decoded length too small", framed(data, 40, ""), Options{DecodedLength: 50}, "IncompleteBody"},
		{"decoded length too large", framed(data, 40, ""), Options{DecodedLength: 500}, "IncompleteBody"},
		{"non-hex size", "zz\r\nabc\r\n0\r\n\r\n", Options{DecodedLength: -1}, "IncompleteBody"},
		{"size overruns data", "ff\r\nabc\r\n0\r\n\r\n", Options{DecodedLength: -1}, "IncompleteBody"},
		{"missing CRLF", "3\r\nabcX0\r\n\r\n", Options{DecodedLength: -1}, "IncompleteBody"},
		{"bare LF", "3\nabc\r\n0\r\n\r\n", Options{DecodedLength: -1}, "IncompleteBody"},
		{"huge size", "7fffffffffffffff\r\nabc", Options{DecodedLength: 3}, "IncompleteBody"},
		{"too many digits", "00000000000000003\r\nabc\r\n0\r\n\r\n", Options{DecodedLength: -1}, "IncompleteBody"},
		{"long header line", strings.Repeat("1", 5000) + "\r\n", Options{DecodedLength: -1}, "IncompleteBody"},
		{"huge trailer", "0\r\n" + strings.Repeat("x-amz-meta-a:"+strings.Repeat("v", 4000)+"\r\n", 5) + "\r\n", Options{DecodedLength: -1}, "MalformedTrailerError"},
		{"signature on unsigned chunk", "3;chunk-signature=" + strings.Repeat("0", 64) + "\r\nabc\r\n0\r\n\r\n", Options{DecodedLength: -1}, "IncompleteBody"},
		{"signed chunk without signature", "3\r\nabc\r\n0\r\n\r\n", Options{DecodedLength: -1, SkipSignatures: true}, "IncompleteBody"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeAll(c.body, c.opts)
			if code(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}
}

// chain is a toy signature chain: a chunk's signature is the hex SHA-256 of
// the previous signature and the data hash.
type chain struct{ prev string }

func (c *chain) next(dataHash []byte) string {
	s := sha256.Sum256([]byte(c.prev + fmt.Sprintf("%x", dataHash)))
	c.prev = fmt.Sprintf("%x", s)
	return c.prev
}
func (c *chain) VerifyChunk(h []byte, sig string) bool   { return c.next(h) == sig }
func (c *chain) VerifyTrailer(h []byte, sig string) bool { return c.next(h) == sig }

func signedBody(chunks [][]byte, tamper int) string {
	signer := &chain{prev: "seed"}
	var b strings.Builder
	for i, c := range append(chunks, nil) {
		sum := sha256.Sum256(c)
		sig := signer.next(sum[:])
		if i == tamper {
			sig = strings.Repeat("0", 64)
		}
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(c), sig)
		if len(c) > 0 {
			b.Write(c)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestSignedChunks(t *testing.T) {
	chunks := [][]byte{[]byte("first chunk"), []byte("second"), []byte("third")}
	for tamper := -1; tamper <= len(chunks); tamper++ {
		got, err := decodeAll(signedBody(chunks, tamper), Options{Signatures: &chain{prev: "seed"}, DecodedLength: 22})
		switch {
		case tamper < 0 && (err != nil || string(got) != "first chunksecondthird"):
			t.Fatalf("untampered: %q, %v", got, err)
		case tamper >= 0 && code(err) != "SignatureDoesNotMatch":
			t.Fatalf("chunk %d tampered: got %v", tamper, err)
		}
	}
}

// TestEncoderNeverEndsAnUnverifiedBody checks the property the proxy relies
// on: when verification fails, the re-framed body stops before its final
// chunk, so the backend never sees a complete upload.
func TestEncoderNeverEndsAnUnverifiedBody(t *testing.T) {
	chunks := [][]byte{bytes.Repeat([]byte("a"), 70000), bytes.Repeat([]byte("b"), 70000)}
	for tamper := 0; tamper <= len(chunks); tamper++ {
		d, _ := NewDecoder(strings.NewReader(signedBody(chunks, tamper)), Options{Signatures: &chain{prev: "seed"}, DecodedLength: 140000})
		out, err := io.ReadAll(NewEncoder(d, 140000))
		if code(err) != "SignatureDoesNotMatch" {
			t.Fatalf("tamper %d: got %v", tamper, err)
		}
		if bytes.Contains(out, []byte("0\r\n\r\n")) {
			t.Fatalf("tamper %d: the final chunk was sent", tamper)
		}
	}
}

func TestPlainEncoderNeverEndsATruncatedBody(t *testing.T) {
	data := bytes.Repeat([]byte("p"), 200000)
	out, err := io.ReadAll(NewPlainEncoder(bytes.NewReader(data[:150000]), int64(len(data))))
	if err == nil || bytes.Contains(out, []byte("0\r\n\r\n")) {
		t.Fatalf("a truncated body was framed to its end (err %v)", err)
	}
	out, err = io.ReadAll(NewPlainEncoder(bytes.NewReader(data), int64(len(data))))
	if want, _ := EncodedLength(int64(len(data)), ""); err != nil || int64(len(out)) != want {
		t.Fatalf("whole body: %d bytes, %v", len(out), err)
	}
	back, err := decodeAll(string(out), Options{DecodedLength: int64(len(data))})
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("framed body does not decode back: %v", err)
	}
}
