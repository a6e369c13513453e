package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
)

// frameKind is how a response body is delimited on the connection.
type frameKind uint8

const (
	noBody         frameKind = iota // HEAD, 1xx, 204, 304, Content-Length: 0
	lengthBody                      // Content-Length bytes
	chunkedBody                     // chunked transfer coding, then trailer fields
	untilCloseBody                  // the rest of the connection
	netHTTPBody                     // net/http's reader: the head went by http.ReadResponse
)

// frame reads a response body off the connection's reader as net/http's
// body reader does (the same bytes, the same errors at a premature end),
// without that reader's allocations for the common kinds.
type frame struct {
	kind   frameKind
	br     *bufio.Reader
	length int64          // lengthBody, netHTTPBody: the Content-Length, or -1
	read   int64          // lengthBody, netHTTPBody: bytes read so far
	chunks io.Reader      // chunkedBody: the decoder, made at the first read
	resp   *http.Response // chunkedBody: where trailer fields go
	rc     io.ReadCloser  // netHTTPBody
}

func (f *frame) Read(p []byte) (int, error) {
	switch f.kind {
	case lengthBody:
		if f.read >= f.length {
			return 0, io.EOF
		}
		if remaining := f.length - f.read; int64(len(p)) > remaining {
			p = p[:remaining]
		}
		n, err := f.br.Read(p)
		f.read += int64(n)
		switch {
		case err == io.EOF && f.read < f.length:
			return n, io.ErrUnexpectedEOF // the connection ended first
		case err == nil && n > 0 && f.read == f.length:
			return n, io.EOF // the end, with the last bytes: the connection goes back at once
		}
		return n, err
	case chunkedBody:
		if f.chunks == nil {
			f.chunks = httputil.NewChunkedReader(f.br)
		}
		n, err := f.chunks.Read(p)
		if err == io.EOF {
			f.kind = noBody // read once: what follows is the next response
			if terr := readTrailer(f.br, f.resp); terr != nil {
				err = terr
			}
		}
		return n, err
	case untilCloseBody:
		return f.br.Read(p)
	case netHTTPBody:
		n, err := f.rc.Read(p)
		f.read += int64(n)
		return n, err
	}
	return 0, io.EOF
}

// buffered says the rest of the body (if any) is in the read buffer: it
// is read without another read of the socket.
func (f *frame) buffered() bool {
	switch f.kind {
	case noBody:
		return true
	case lengthBody:
		return f.length-f.read <= int64(f.br.Buffered())
	}
	return false
}

// knownLength says the rest of the body is the next length-read bytes
// of the connection, with no framing: it can be moved in the kernel.
func (f *frame) knownLength() bool {
	return f.kind == lengthBody || (f.kind == netHTTPBody && f.length >= 0)
}

var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

// readTrailer reads the trailer section after a chunked body's last chunk
// into resp.Trailer, as net/http does: most often just its empty line. A
// section that does not end within the read buffer is refused.
func readTrailer(br *bufio.Reader, resp *http.Response) error {
	buf, err := br.Peek(2)
	if bytes.Equal(buf, []byte("\r\n")) {
		_, _ = br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !seeUpcomingDoubleCRLF(br) {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	fields, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if resp.Trailer == nil {
		resp.Trailer = http.Header(fields)
		return nil
	}
	for name, values := range fields {
		resp.Trailer[name] = values
	}
	return nil
}

// seeUpcomingDoubleCRLF reports whether "\r\n\r\n" ends within what br can
// buffer.
func seeUpcomingDoubleCRLF(br *bufio.Reader) bool {
	for peek := 4; ; peek++ {
		buf, err := br.Peek(peek)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
