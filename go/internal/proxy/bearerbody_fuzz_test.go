package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/object-storage-proxy/osp/internal/awschunked"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// The upload modes FuzzBearerBody drives through planBody.
const (
	modeSigned          = iota // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
	modeSignedTrailer          // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, crc32 trailer
	modeUnsignedTrailer        // STREAMING-UNSIGNED-PAYLOAD-TRAILER, crc32 trailer
	modeSHA256                 // a plain body under its signed x-amz-content-sha256
	modeCount
)

var modeHashes = [modeCount]sigv4.PayloadMode{sigv4.StreamingPayload, sigv4.StreamingPayloadTrailer, sigv4.StreamingUnsignedTrailer, ""}

const (
	fuzzDate   = "20240601"
	fuzzRegion = "eu-de"
	fuzzSecret = "bearer-fuzz-secret"
)

var fuzzSeedSignature = string(bytes.Repeat([]byte("5e"), 32))

// fuzzSigner signs aws-chunked bodies as a client does, written out here
// rather than with sigv4's code, so the proxy's chain is checked against
// an independent signer.
type fuzzSigner struct{ key []byte }

func fuzzMAC(key []byte, text string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(text))
	return m.Sum(nil)
}

func newFuzzSigner() fuzzSigner {
	key := fuzzMAC([]byte("AWS4"+fuzzSecret), fuzzDate)
	for _, part := range []string{fuzzRegion, "s3", "aws4_request"} {
		key = fuzzMAC(key, part)
	}
	return fuzzSigner{key: key}
}

func (s fuzzSigner) sign(algorithm, previous, tail string) string {
	scope := fuzzDate + "/" + fuzzRegion + "/s3/aws4_request"
	return hex.EncodeToString(fuzzMAC(s.key, algorithm+"\n"+fuzzDate+"T120000Z\n"+scope+"\n"+previous+"\n"+tail))
}

// fuzzUpload is the body a well-behaved client sends for data in mode,
// with chunks of n bytes.
func fuzzUpload(mode int, data []byte, n int) []byte {
	if mode == modeSHA256 {
		return bytes.Clone(data)
	}
	signer, previous := newFuzzSigner(), fuzzSeedSignature
	var b bytes.Buffer
	for rest := data; ; {
		piece := rest[:min(n, len(rest))]
		rest = rest[len(piece):]
		fmt.Fprintf(&b, "%x", len(piece))
		if mode != modeUnsignedTrailer {
			sum := sha256.Sum256(piece)
			previous = signer.sign("AWS4-HMAC-SHA256-PAYLOAD", previous, sigv4.EmptySHA256+"\n"+hex.EncodeToString(sum[:]))
			b.WriteString(";chunk-signature=" + previous)
		}
		b.WriteString("\r\n")
		if len(piece) == 0 {
			break
		}
		b.Write(piece)
		b.WriteString("\r\n")
	}
	if mode != modeSigned {
		sum := crc32.ChecksumIEEE(data)
		line := "x-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
		b.WriteString(line + "\r\n")
		if mode == modeSignedTrailer {
			h := sha256.Sum256([]byte(line + "\n"))
			b.WriteString("x-amz-trailer-signature:" + signer.sign("AWS4-HMAC-SHA256-TRAILER", previous, hex.EncodeToString(h[:])) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// sentBody is a client's request body as Go's server hands it on: at
// most Content-Length bytes, and io.ErrUnexpectedEOF if the client sent
// fewer.
type sentBody struct {
	r    io.Reader
	left int64
}

func (c *sentBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if c.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// bearerRequest is the request planBody sees for a client's upload.
func bearerRequest(mode int, stream []byte, declared int64, hash string) (*http.Request, authenticated) {
	r, _ := http.NewRequest(http.MethodPut, "http://proxy/b/k", nil)
	auth := authenticated{payload: modeHashes[mode]}
	if mode == modeSHA256 {
		auth.payload = sigv4.PayloadMode(hash)
		r.ContentLength = declared
	} else {
		r.ContentLength = int64(len(stream)) // the framed length the client announced
		r.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(declared, 10))
		if mode != modeSigned {
			r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		}
		if mode != modeUnsignedTrailer {
			cred := sigv4.Credential{Scope: sigv4.Scope{Date: fuzzDate, Region: fuzzRegion, Service: "s3"}, AmzDate: fuzzDate + "T120000Z"}
			auth.chunks = sigv4.NewVerifier(nil).NewChunkChain(fuzzSecret, cred, fuzzSeedSignature)
		}
	}
	r.Body = io.NopCloser(&sentBody{r: bytes.NewReader(stream), left: r.ContentLength})
	return r, auth
}

// backendReads is what a bearer backend receives of the planned body: the
// transport reads at most the Content-Length it announced, in pieces of
// step bytes (any size; a transport's buffers vary).
func backendReads(u *upstreamBody, step int) ([]byte, error) {
	var got []byte
	buf := make([]byte, step)
	lim := io.LimitReader(u, u.contentLength)
	for {
		n, err := lim.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return got, nil
			}
			return got, err
		}
	}
}

// verifies reports whether the stream is a whole upload of exactly want
// under the proxy's own checks, decoded on its own from start to end.
func verifies(mode int, stream []byte, declared int64, hash string, want []byte) bool {
	if mode == modeSHA256 {
		// The body is the first Content-Length bytes; what follows them on
		// the connection is the next request.
		if int64(len(stream)) < declared {
			return false
		}
		sum := sha256.Sum256(stream[:declared])
		return hex.EncodeToString(sum[:]) == hash && bytes.Equal(stream[:declared], want)
	}
	r, auth := bearerRequest(mode, stream, declared, hash)
	opts := awschunked.Options{DecodedLength: declared, SkipSignatures: false}
	if mode != modeSigned {
		opts.Trailer = "x-amz-checksum-crc32"
	}
	if auth.chunks != nil {
		opts.Signatures = auth.chunks
	}
	d, err := awschunked.NewDecoder(r.Body, opts)
	if err != nil {
		return false
	}
	out, err := io.ReadAll(d)
	return err == nil && bytes.Equal(out, want)
}

// FuzzBearerBody drives planBody's bearer branch (an IBM API key backend,
// which checks no payload hash and stores any body that arrives whole) with
// tampered uploads: a well-formed upload of data, cut at any byte and
// continued with anything, under any declared length, read by the backend
// side in pieces of any size. The invariant: the backend never receives the
// last byte of the length it was announced unless the client's stream
// verified to its end; and in signed modes, what it receives whole is
// exactly the data the client signed. An untampered upload always arrives
// whole and unchanged, unless a chunk before the last is under 8 KiB
// (then it is refused, as S3 does). Failures are S3 errors.
func FuzzBearerBody(f *testing.F) {
	f.Add(uint8(modeSigned), []byte("hello world, hello bearer"), uint8(7), uint16(65535), []byte{}, int16(0), uint8(3))
	f.Add(uint8(modeSignedTrailer), []byte("0123456789abcdef"), uint8(5), uint16(65535), []byte{}, int16(0), uint8(1))
	f.Add(uint8(modeUnsignedTrailer), []byte("0123456789abcdef"), uint8(16), uint16(65535), []byte{}, int16(0), uint8(64))
	f.Add(uint8(modeSHA256), []byte("a plain body"), uint8(1), uint16(65535), []byte{}, int16(0), uint8(2))
	// The overflow of issue 12 (item 3): one valid chunk of 10 bytes, then
	// a chunk size that wraps the running total, then unsigned bytes.
	f.Add(uint8(modeUnsignedTrailer), []byte("0123456789"), uint8(10), uint16(15), []byte("7fffffffffffffff\r\n"+string(bytes.Repeat([]byte("E"), 60))), int16(20), uint8(7))
	f.Add(uint8(modeSigned), []byte("0123456789"), uint8(10), uint16(96), []byte("7fffffffffffffff;chunk-signature="+string(bytes.Repeat([]byte("0"), 64))+"\r\n"+string(bytes.Repeat([]byte("E"), 60))), int16(20), uint8(255))
	f.Add(uint8(modeSigned), []byte("0123456789"), uint8(10), uint16(96), []byte("7ffffffffffffffe;chunk-signature="+string(bytes.Repeat([]byte("0"), 64))+"\r\n"+string(bytes.Repeat([]byte("E"), 60))), int16(20), uint8(9))
	// A body longer than announced, a truncated one, a forged trailer.
	f.Add(uint8(modeSHA256), []byte("a plain body"), uint8(1), uint16(65535), []byte("more"), int16(0), uint8(5))
	// The signed hash of a body, and no body at all (found by test_mutations).
	f.Add(uint8(modeSHA256), []byte("a plain body"), uint8(1), uint16(0), []byte{}, int16(-12), uint8(5))
	f.Add(uint8(modeSignedTrailer), []byte("0123456789abcdef"), uint8(8), uint16(120), []byte{}, int16(0), uint8(4))
	f.Add(uint8(modeUnsignedTrailer), []byte("0123456789abcdef"), uint8(8), uint16(40), []byte("x-amz-checksum-crc32:AAAAAA==\r\n\r\n"), int16(0), uint8(4))
	f.Fuzz(func(t *testing.T, mode uint8, data []byte, chunk uint8, cut uint16, splice []byte, delta int16, step uint8) {
		m := int(mode) % modeCount
		if len(data) > 4096 {
			data = data[:4096]
		}
		n := int(chunk)%64 + 1
		good := fuzzUpload(m, data, n)
		// data is under 8 KiB, so a body of more than one data chunk has a
		// small chunk before the last, which S3 and the proxy refuse.
		smallChunks := m != modeSHA256 && len(data) > n
		stream := good
		tampered := int(cut) < len(good) || len(splice) > 0
		if tampered {
			stream = append(bytes.Clone(good[:min(int(cut), len(good))]), splice...)
		}
		declared := max(int64(len(data))+int64(delta), 0)
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		r, auth := bearerRequest(m, stream, declared, hash)
		u, err := planBody(r, auth, nothing)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("planBody failed without an S3 error: %v", err)
			}
			return
		}
		if u == nil {
			if declared == 0 && m == modeSHA256 {
				if len(data) > 0 {
					t.Fatalf("an empty body went to the backend under the signed hash of %d bytes", len(data))
				}
				return // an empty plain body goes as it is
			}
			t.Fatalf("mode %d: no plan for a bearer body of %d bytes", m, declared)
		}
		got, err := backendReads(u, int(step)%97+1)
		if err != nil && code(err) == "" {
			t.Fatalf("the backend's read failed without an S3 error: %v", err)
		}
		whole := int64(len(got)) == u.contentLength && u.contentLength > 0
		if whole && !verifies(m, stream, declared, hash, got) {
			t.Fatalf("mode %d: the backend received all %d bytes of a stream that does not verify (%d-byte stream, read error %v)",
				m, u.contentLength, len(stream), err)
		}
		if whole && m != modeUnsignedTrailer && !bytes.Equal(got, data) {
			t.Fatalf("mode %d: the backend received %q whole, the client signed %q", m, got, data)
		}
		if !tampered && declared == int64(len(data)) && smallChunks {
			if whole || code(err) != "InvalidChunkSizeError" {
				t.Fatalf("mode %d: an upload in chunks of %d bytes went whole or was refused otherwise: %v", m, n, err)
			}
			return
		}
		if !tampered && declared == int64(len(data)) && (err != nil || !bytes.Equal(got, data)) {
			t.Fatalf("mode %d: an untampered upload of %d bytes arrived as %d bytes, %v", m, len(data), len(got), err)
		}
	})
}

func code(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	return ""
}
