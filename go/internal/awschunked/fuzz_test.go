package awschunked

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/sigv4"
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
	// A chunk size that wrapped the running total negative (issue 12).
	f.Add("a\r\n0123456789\r\n7fffffffffffffff\r\n"+strings.Repeat("E", 100), false, false)
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

// refChain signs aws-chunked bodies the way a client does, written out
// here (not with sigv4's code) so that the proxy's chain is checked
// against an independent signer.
type refChain struct {
	key                    []byte
	amzDate, scope, seed   string
	previous               string
	checksumName, checksum string
}

func refHMAC(key []byte, text string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(text))
	return m.Sum(nil)
}

func newRefChain(secret, date, region, seed string) *refChain {
	key := refHMAC([]byte("AWS4"+secret), date)
	for _, part := range []string{region, "s3", "aws4_request"} {
		key = refHMAC(key, part)
	}
	return &refChain{key: key, amzDate: date + "T120000Z", scope: date + "/" + region + "/s3/aws4_request", seed: seed, previous: seed}
}

func (c *refChain) sign(algorithm, tail string) string {
	sig := hex.EncodeToString(refHMAC(c.key, algorithm+"\n"+c.amzDate+"\n"+c.scope+"\n"+c.previous+"\n"+tail))
	c.previous = sig
	return sig
}

// body frames data in chunks of n bytes, each signed, and the final chunk,
// then (with a trailer) the crc32 checksum trailer and its signature.
func (c *refChain) body(data []byte, n int, trailer bool) []byte {
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	var b bytes.Buffer
	for rest := data; ; {
		piece := rest[:min(n, len(rest))]
		rest = rest[len(piece):]
		sum := sha256.Sum256(piece)
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(piece), c.sign("AWS4-HMAC-SHA256-PAYLOAD", emptySHA256+"\n"+hex.EncodeToString(sum[:])))
		if len(piece) == 0 {
			break
		}
		b.Write(piece)
		b.WriteString("\r\n")
	}
	if trailer {
		h := crc32.NewIEEE()
		h.Write(data)
		line := "x-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString(h.Sum(nil))
		sum := sha256.Sum256([]byte(line + "\n"))
		fmt.Fprintf(&b, "%s\r\nx-amz-trailer-signature:%s\r\n", line, c.sign("AWS4-HMAC-SHA256-TRAILER", hex.EncodeToString(sum[:])))
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// FuzzSignedBodyTamper signs arbitrary data as an aws-chunked upload (any
// chunk size, with or without a signed checksum trailer) with an
// independent signer, checks that the decoder with the proxy's real
// signature chain (sigv4.ChunkChain) hands out exactly that data, then
// changes one byte of the body: the decoder must then fail, or hand out
// exactly the signed data (a change it may ignore, such as the case of a
// hex digit in a size line). It must never hand out other data, nor panic.
func FuzzSignedBodyTamper(f *testing.F) {
	f.Add([]byte("hello world"), "secret", uint8(4), uint16(0), byte(0), false)
	f.Add([]byte("hello world"), "secret", uint8(4), uint16(20), byte(1), true)
	f.Add(bytes.Repeat([]byte("x"), 200), "s", uint8(63), uint16(70), byte(0x20), true)
	f.Add([]byte{}, "", uint8(1), uint16(3), byte(0xff), true)
	f.Add([]byte("0123456789abcdef"), "k", uint8(7), uint16(150), byte('A'^'a'), false)
	const date, region = "20240601", "eu-de"
	seed := strings.Repeat("5e", 32)
	verifier := sigv4.NewVerifier(nil)
	cred := sigv4.Credential{Scope: sigv4.Scope{Date: date, Region: region, Service: "s3"}, AmzDate: date + "T120000Z"}
	decode := func(body []byte, secret string, decoded int, trailer bool) ([]byte, error) {
		opts := Options{Signatures: verifier.NewChunkChain(secret, cred, seed), DecodedLength: int64(decoded)}
		if trailer {
			opts.Trailer = "x-amz-checksum-crc32"
		}
		d, err := NewDecoder(bytes.NewReader(body), opts)
		if err != nil {
			return nil, fmt.Errorf("new decoder: %w", err)
		}
		return io.ReadAll(io.LimitReader(d, 1<<20))
	}
	f.Fuzz(func(t *testing.T, data []byte, secret string, chunk uint8, pos uint16, xor byte, trailer bool) {
		if len(data) > 8192 {
			data = data[:8192]
		}
		body := newRefChain(secret, date, region, seed).body(data, int(chunk)%64+1, trailer)
		out, err := decode(body, secret, len(data), trailer)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("a correctly signed body of %d bytes: %v (got %d bytes)", len(data), err, len(out))
		}
		if xor == 0 {
			return
		}
		tampered := bytes.Clone(body)
		tampered[int(pos)%len(tampered)] ^= xor
		out, err = decode(tampered, secret, len(data), trailer)
		if err == nil && !bytes.Equal(out, data) {
			t.Fatalf("byte %d changed: decoded %q, signed %q", int(pos)%len(tampered), out, data)
		}
		if err != nil && code(err) == "" {
			t.Fatalf("error without an S3 code: %v", err)
		}
		// The right data under the wrong secret never verifies.
		if _, err := decode(body, secret+"x", len(data), trailer); code(err) != "SignatureDoesNotMatch" {
			t.Fatalf("a body signed with another secret: %v", err)
		}
	})
}
