package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strconv"
)

const (
	blockSize = 1 << 20  // the repeated block of every body
	chunkSize = 64 << 10 // aws-chunked data per chunk, as the proxy re-frames
	// trailerName is the checksum the trailer payload mode sends.
	trailerName = "x-amz-checksum-crc32"
)

// payload is the body of put and fill requests: -size bytes that repeat one
// pseudo-random 1 MiB block. Each request reads it from a fresh reader, so
// even a 1 GiB body never sits in memory; and as every request sends the
// same bytes, its SHA-256 and CRC32 are computed once.
type payload struct {
	block  []byte
	size   int64
	sha256 string // hex, for a signed payload hash
	crc32  string // base64 of the big-endian CRC32, for the trailer
}

// newPayload builds the block (the same in every process, so repeated runs
// send the same bytes) and hashes size bytes of it in one streaming pass.
func newPayload(size int64) *payload {
	p := &payload{block: make([]byte, blockSize), size: size}
	var seed [32]byte
	copy(seed[:], "object-storage-proxy bench body")
	rand.NewChaCha8(seed).Read(p.block)
	sum, crc := sha256.New(), crc32.NewIEEE()
	if _, err := io.Copy(io.MultiWriter(sum, crc), p.data()); err != nil {
		panic(err) // reading from memory does not fail
	}
	p.sha256 = hex.EncodeToString(sum.Sum(nil))
	p.crc32 = base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	return p
}

// data returns a reader of the body's bytes.
func (p *payload) data() io.Reader {
	return &repeatReader{block: p.block, left: p.size}
}

// trailer is the aws-chunked body's trailer line.
func (p *payload) trailer() string {
	return trailerName + ":" + p.crc32 + "\r\n"
}

// chunked returns a reader of the body framed as aws-chunked for
// STREAMING-UNSIGNED-PAYLOAD-TRAILER, and that framing's exact length (the
// request's Content-Length).
func (p *payload) chunked() (io.Reader, int64) {
	return &chunkedReader{data: p.data(), left: p.size, trailer: p.trailer()}, chunkedLength(p.size, p.trailer())
}

// repeatReader yields left bytes of block, over and over.
type repeatReader struct {
	block []byte
	off   int
	left  int64
}

func (r *repeatReader) Read(b []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > r.left {
		b = b[:r.left]
	}
	n := copy(b, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= int64(n)
	return n, nil
}

// chunkedReader frames left bytes of data as aws-chunked (the framing of
// the proxy's own awschunked.Encoder): per chunk of up to chunkSize bytes
// "hex-size\r\n" data "\r\n", then the final "0\r\n", the trailer line and
// an empty line.
type chunkedReader struct {
	data      io.Reader
	left      int64 // data bytes not yet framed
	chunkLeft int64 // data bytes left in the current chunk
	pending   []byte
	trailer   string
	done      bool
}

func (c *chunkedReader) Read(b []byte) (int, error) {
	for {
		switch {
		case len(c.pending) > 0:
			n := copy(b, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		case c.chunkLeft > 0:
			if int64(len(b)) > c.chunkLeft {
				b = b[:c.chunkLeft]
			}
			n, err := c.data.Read(b)
			c.chunkLeft -= int64(n)
			if c.chunkLeft == 0 {
				c.pending = []byte("\r\n")
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // data is exactly left bytes long
			}
			return n, err
		case c.left > 0:
			c.chunkLeft = min(c.left, chunkSize)
			c.left -= c.chunkLeft
			c.pending = []byte(strconv.FormatInt(c.chunkLeft, 16) + "\r\n")
		case !c.done:
			c.done = true
			c.pending = []byte("0\r\n" + c.trailer + "\r\n")
		default:
			return 0, io.EOF
		}
	}
}

// chunkedLength is the length of size bytes framed by chunkedReader.
func chunkedLength(size int64, trailer string) int64 {
	n := int64(0)
	for left := size; left > 0; left -= chunkSize {
		c := min(left, chunkSize)
		n += int64(len(strconv.FormatInt(c, 16))) + 2 + c + 2
	}
	return n + int64(len("0\r\n")+len(trailer)+len("\r\n"))
}
