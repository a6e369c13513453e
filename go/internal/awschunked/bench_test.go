package awschunked

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// BenchmarkDecodeSigned measures verifying and decoding a signed aws-chunked
// body with 64 KiB chunks (SHA-256 of every byte plus one HMAC per chunk).
func BenchmarkDecodeSigned(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB
	var chunks [][]byte
	for i := 0; i < len(data); i += 64 << 10 {
		chunks = append(chunks, data[i:i+64<<10])
	}
	body := signedBody(chunks, -1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d, _ := NewDecoder(strings.NewReader(body), Options{Signatures: &chain{prev: "seed"}, DecodedLength: int64(len(data))})
		if _, err := io.Copy(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeUnsignedTrailerReframed measures the path of boto3's
// default uploads: decode, verify the CRC32 trailer, re-frame for the backend.
func BenchmarkDecodeUnsignedTrailerReframed(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	body := framed(data, 64<<10, "x-amz-checksum-crc32")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d, _ := NewDecoder(strings.NewReader(body), Options{Trailer: "x-amz-checksum-crc32", DecodedLength: int64(len(data))})
		if _, err := io.Copy(io.Discard, NewEncoder(d, int64(len(data)))); err != nil {
			b.Fatal(err)
		}
	}
}
