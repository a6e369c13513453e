package awschunked

import (
	"fmt"
	"io"
	"strconv"
)

// EncodedChunkSize is the chunk size the proxy re-frames bodies in.
const EncodedChunkSize = 64 << 10

// Encoder frames data as an unsigned aws-chunked body
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER) with fixed-size chunks, ending with a
// checksum trailer taken from the source once it has verified it (a
// Decoder), or with none. Fixed chunks make the framed length known before
// the first byte is sent, so the backend gets a Content-Length; and the
// final chunk goes only after the source reported its end, so a body cut
// short never completes at the backend.
type Encoder struct {
	src       io.Reader
	trailer   func() (name, value string)
	remaining int64 // decoded bytes not yet framed
	chunkLeft int64 // data bytes left in the chunk being written
	pending   []byte
	finished  bool
}

// NewEncoder frames the decodedLength bytes that a Decoder yields, with
// its trailer.
func NewEncoder(src *Decoder, decodedLength int64) *Encoder {
	return &Encoder{src: src, trailer: src.Trailer, remaining: decodedLength}
}

// NewPlainEncoder frames the length bytes of a plain body, with no trailer.
func NewPlainEncoder(src io.Reader, length int64) *Encoder {
	return &Encoder{src: src, trailer: func() (string, string) { return "", "" }, remaining: length}
}

// EncodedLength is the framed length of decodedLength bytes with a trailer
// of the given checksum (a trailer name such as "x-amz-checksum-crc32", or
// "" for none).
func EncodedLength(decodedLength int64, trailer string) (int64, error) {
	full, rest := decodedLength/EncodedChunkSize, decodedLength%EncodedChunkSize
	n := full * chunkOverhead(EncodedChunkSize)
	n += decodedLength
	if rest > 0 {
		n += chunkOverhead(rest)
	}
	n += int64(len("0\r\n\r\n"))
	if trailer != "" {
		h, ok := NewChecksum(trailer)
		if !ok {
			return 0, fmt.Errorf("unknown checksum trailer %q", trailer)
		}
		n += int64(len(trailer) + 1 + encodedChecksumLen(h) + 2)
	}
	return n, nil
}

// chunkOverhead is the framing around one chunk of size bytes.
func chunkOverhead(size int64) int64 {
	return int64(len(strconv.FormatInt(size, 16))) + 4
}

func (e *Encoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.pending) > 0 {
			c := copy(p[n:], e.pending)
			e.pending = e.pending[c:]
			n += c
			continue
		}
		if e.finished {
			break
		}
		if e.chunkLeft > 0 {
			want := min(int64(len(p)-n), e.chunkLeft)
			m, err := e.src.Read(p[n : n+int(want)])
			n += m
			e.chunkLeft -= int64(m)
			e.remaining -= int64(m)
			if err == io.EOF && e.chunkLeft > 0 {
				return n, fmt.Errorf("awschunked: body ended %d bytes early", e.chunkLeft)
			}
			if err != nil && err != io.EOF {
				return n, err
			}
			if e.chunkLeft == 0 {
				e.pending = []byte("\r\n")
			}
			if m > 0 {
				continue
			}
			return n, nil
		}
		if e.remaining > 0 {
			e.chunkLeft = min(e.remaining, EncodedChunkSize)
			e.pending = []byte(strconv.FormatInt(e.chunkLeft, 16) + "\r\n")
			continue
		}
		// All data framed: the trailer is known only once the Decoder has
		// read and verified the end of the client's body.
		if m, err := e.src.Read(make([]byte, 1)); err != io.EOF {
			if err == nil {
				err = fmt.Errorf("awschunked: body longer than its decoded length (%d more bytes)", m)
			}
			return n, err
		}
		name, value := e.trailer()
		end := "0\r\n"
		if name != "" {
			end += name + ":" + value + "\r\n"
		}
		e.pending = []byte(end + "\r\n")
		e.finished = true
	}
	if n == 0 && e.finished && len(e.pending) == 0 {
		return 0, io.EOF
	}
	return n, nil
}
