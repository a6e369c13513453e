package integrity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestHoldBackKeepsTheLastByteOfAFailedBody(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	readers := map[string]func(io.Reader) io.Reader{
		"plain":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		for _, bufSize := range []int{1, 2, 7, 4096, 1 << 16} {
			out, err := readAll(NewHoldBack(NewSHA256Reader(wrap(bytes.NewReader(data)), good)), bufSize)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("%s/%d: good body: %d bytes, %v", name, bufSize, len(out), err)
			}
			out, err = readAll(NewHoldBack(NewSHA256Reader(wrap(bytes.NewReader(data)), good[1:]+"0")), bufSize)
			var code interface{ Error() string }
			if !errors.As(err, &code) || len(out) >= len(data) {
				t.Fatalf("%s/%d: bad body: %d of %d bytes passed, err %v", name, bufSize, len(out), len(data), err)
			}
		}
	}
}

func readAll(r io.Reader, bufSize int) ([]byte, error) {
	var out []byte
	buf := make([]byte, bufSize)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
