package proxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
)

// A CompleteMultipartUpload answer names the new object's URL in
// <Location>. The backend writes its own address there (versitygw builds it
// from the Host it was sent, S3 from its endpoint): passed on, it would tell
// the client the backend's host and port and a URL it cannot use. The
// proxy writes instead the URL the client completed the upload at, without
// the query: its scheme, its Host and its path, as the client addressed the
// object.

const (
	locationOpen  = "<Location>"
	locationClose = "</Location>"
	// maxLocation bounds what is held back looking for </Location>: an
	// object URL is at most a host and a 1024-byte key, percent-encoded.
	maxLocation = 16 << 10
)

// clientLocation is the URL a client addressed an object at, with the
// scheme it used, XML-escaped.
func clientLocation(r *http.Request, scheme string) []byte {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(scheme+"://"+r.Host+r.URL.EscapedPath()))
	return b.Bytes()
}

// locationRewriter passes a body through, replacing the text of its first
// <Location> element. Everything before that element goes on as it
// arrives (the whitespace S3 sends to keep a slow completion alive must
// reach the client at once), but for the few bytes that could be the start
// of "<Location>" split across two reads.
type locationRewriter struct {
	src      io.Reader
	location []byte
	held     []byte // read, not yet given out
	out      []byte // ready to give out
	done     bool   // the element was rewritten (or never will be): pass the rest through
	eof      bool
	buf      []byte
}

// partialPrefix is the length of the longest tail of b that is a proper
// prefix of s.
func partialPrefix(b []byte, s string) int {
	for n := min(len(b), len(s)-1); n > 0; n-- {
		if string(b[len(b)-n:]) == s[:n] {
			return n
		}
	}
	return 0
}

func newLocationRewriter(src io.Reader, location []byte) *locationRewriter {
	return &locationRewriter{src: src, location: location}
}

func (l *locationRewriter) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if l.eof {
			if len(l.held) > 0 {
				l.out, l.held = l.held, nil
				continue
			}
			return 0, io.EOF
		}
		if l.done && len(l.held) == 0 {
			return l.src.Read(p)
		}
		if l.buf == nil {
			l.buf = make([]byte, 4<<10)
		}
		n, err := l.src.Read(l.buf)
		l.held = append(l.held, l.buf[:n]...)
		if err == io.EOF {
			l.eof = true
		} else if err != nil {
			return 0, err
		}
		l.scan()
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

// scan moves what can be given out from held to out.
func (l *locationRewriter) scan() {
	if l.done {
		l.out, l.held = append(l.out, l.held...), nil
		return
	}
	open := bytes.Index(l.held, []byte(locationOpen))
	if open < 0 {
		// Keep back only a tail that could begin "<Location>".
		keep := 0
		if !l.eof {
			keep = partialPrefix(l.held, locationOpen)
		}
		cut := len(l.held) - keep
		l.out = append(l.out, l.held[:cut]...)
		l.held = append([]byte(nil), l.held[cut:]...)
		return
	}
	rest := l.held[open+len(locationOpen):]
	end := bytes.Index(rest, []byte(locationClose))
	switch {
	case end >= 0:
		l.out = append(l.out, l.held[:open+len(locationOpen)]...)
		l.out = append(l.out, l.location...)
		l.out = append(l.out, rest[end:]...)
		l.held, l.done = nil, true
	case l.eof || len(rest) > maxLocation:
		// Not the element we know: leave the body as it is.
		l.out, l.held, l.done = append(l.out, l.held...), nil, true
	}
}
