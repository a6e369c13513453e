package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestChunked decodes the framed body as a server would and checks the
// announced length, the chunk sizes, the data and the trailer's CRC32.
func TestChunked(t *testing.T) {
	for _, size := range []int64{1, chunkSize - 1, chunkSize, chunkSize + 1, blockSize + 3*chunkSize + 17} {
		p := newPayload(size)
		rd, length := p.chunked()
		framed, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(framed)) != length {
			t.Fatalf("size %d: framed %d bytes, announced %d", size, len(framed), length)
		}
		want, _ := io.ReadAll(p.data())
		if int64(len(want)) != size {
			t.Fatalf("size %d: data reader gave %d bytes", size, len(want))
		}
		for i := range want {
			if want[i] != p.block[i%blockSize] {
				t.Fatalf("size %d: byte %d is not the block's", size, i)
			}
		}
		br := bufio.NewReader(bytes.NewReader(framed))
		var got []byte
		for {
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasSuffix(line, "\r\n") {
				t.Fatalf("size %d: chunk header %q: %v", size, line, err)
			}
			n, err := strconv.ParseInt(strings.TrimSuffix(line, "\r\n"), 16, 64)
			if err != nil || n > chunkSize {
				t.Fatalf("size %d: chunk size %q", size, line)
			}
			if n == 0 {
				break
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil || string(chunk[n:]) != "\r\n" {
				t.Fatalf("size %d: chunk of %d: %v", size, n, err)
			}
			got = append(got, chunk[:n]...)
		}
		rest, _ := io.ReadAll(br)
		sum := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(want)))
		if string(rest) != "x-amz-checksum-crc32:"+sum+"\r\n\r\n" {
			t.Fatalf("size %d: trailer %q", size, rest)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: decoded data differs", size)
		}
	}
}
