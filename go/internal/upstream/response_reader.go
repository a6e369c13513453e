package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/object-storage-proxy/osp/internal/fieldline"
)

// response is the memory of one response on the direct path, in one
// allocation where there were three: the http.Response handed to the
// caller, its body, and the slices of its header values (which
// parseFields cuts from values, as long as there is room).
type response struct {
	http.Response
	body   body
	values [12]string // S3's answers have some ten fields; 480 bytes in all
}

// readResponseHead reads one response head from br into the
// *http.Response http.ReadResponse returns, and how its body is framed.
// Unless the frame says there is no body, the caller reads it through the
// frame and sets resp.Body. A head parsed here is read into into, which
// the result then is (&into.Response); into must not be reused while it
// is.
//
// A plain head, whole in br's buffer, is parsed here, in one string: its
// values and most names are views of that string, where http.ReadResponse
// allocates each. Anything else (a head larger than the buffer, folded
// lines, a malformed line, an unusual version, framing net/http refuses or
// trailers it announces) goes by http.ReadResponse, which then also says
// what is wrong with it: the parser below only ever accepts what
// http.ReadResponse accepts, with the same result
// (FuzzReadResponseHead checks both).
func readResponseHead(br *bufio.Reader, req *http.Request, into *response) (*http.Response, frame, error) {
	head, err := peekHead(br)
	if err != nil {
		return nil, frame{}, err
	}
	if head != nil {
		if resp, f, ok := parseHead(string(head), req, into); ok {
			_, _ = br.Discard(len(head)) // cannot fail: the head is buffered
			f.br = br
			return resp, f, nil
		}
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, frame{}, err
	}
	if resp.Body == http.NoBody {
		return resp, frame{kind: noBody}, nil
	}
	return resp, frame{kind: netHTTPBody, br: br, rc: resp.Body, length: resp.ContentLength}, nil
}

// peekHead returns the head at the start of br's buffer, through the empty
// line that ends it, reading until it is there. It returns nil, nil when
// the head does not fit the buffer or the connection ends (or fails)
// after part of it: http.ReadResponse then reads what there is. An error
// before the first byte is http.ReadResponse's: io.EOF is unexpected.
func peekHead(br *bufio.Reader) ([]byte, error) {
	scanned := 0 // the complete lines already looked at
	for {
		buf, err := br.Peek(max(br.Buffered(), 1))
		if len(buf) == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if n, done := headLength(buf, &scanned); done {
			return buf[:n], nil
		}
		if err != nil || len(buf) == br.Size() {
			return nil, nil
		}
		if _, err := br.Peek(len(buf) + 1); err != nil && br.Buffered() == len(buf) {
			return nil, nil
		}
	}
}

// headLength finds the empty line ("\n" or "\r\n") that ends a head: the
// length through it. scanned is where the line after the last one
// looked at starts (0: the status line, never the end).
func headLength(buf []byte, scanned *int) (int, bool) {
	for {
		nl := bytes.IndexByte(buf[*scanned:], '\n')
		if nl < 0 {
			return 0, false
		}
		line := buf[*scanned : *scanned+nl]
		start := *scanned
		*scanned += nl + 1
		if start > 0 && (len(line) == 0 || (len(line) == 1 && line[0] == '\r')) {
			return *scanned, true
		}
	}
}

// parseHead parses a whole head (status line, fields, empty line) into
// into as http.ReadResponse does, or declines (ok false) anything it does
// not take exactly as http.ReadResponse would.
func parseHead(head string, req *http.Request, into *response) (resp *http.Response, f frame, ok bool) {
	statusLine, rest := nextLine(head)
	proto, status, found := strings.Cut(statusLine, " ")
	if !found || hasControl(statusLine) {
		return nil, f, false
	}
	resp = &into.Response
	*resp = http.Response{Proto: proto, Status: strings.TrimLeft(status, " "), Request: req}
	switch proto {
	case "HTTP/1.1":
		resp.ProtoMajor, resp.ProtoMinor = 1, 1
	case "HTTP/1.0":
		resp.ProtoMajor, resp.ProtoMinor = 1, 0
	default:
		return nil, f, false
	}
	code, _, _ := strings.Cut(resp.Status, " ")
	if len(code) != 3 || !allDigits(code) {
		return nil, f, false
	}
	resp.StatusCode = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if resp.Header, ok = parseFields(rest, into.values[:]); !ok {
		return nil, f, false
	}
	if f, ok = framingOf(resp, req); !ok {
		return nil, f, false
	}
	return resp, f, true
}

// parseFields parses the header fields of a head after its status line,
// up to the empty line: no folded lines, no malformed ones. The values'
// slices are cut from room while it lasts.
//
// Whether a name came before is told by comparing it with the names of
// the first lines, kept on the stack: for the few fields of a response,
// cheaper than a lookup in the map before each insertion.
func parseFields(fields string, room []string) (http.Header, bool) {
	n := strings.Count(fields, "\n") - 1 // lines, less the empty one
	if n < 0 {
		return nil, false
	}
	h := make(http.Header, n)
	values := room // one value a name, most often: cut up below
	if n > len(room) {
		values = make([]string, n)
	}
	values = values[:n]
	var stack [maxScannedNames]string
	names := stack[:0] // of the first lines, while they fit
	for {
		line, rest := nextLine(fields)
		if line == "" {
			return h, true
		}
		fields = rest
		if isBlank(line[0]) {
			return nil, false // folded (obs-fold), or white space before the first field
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 { // no colon, or no name
			return nil, false
		}
		name, ok := canonicalName(line[:colon])
		value := trimBlanks(line[colon+1:])
		if !ok || !fieldline.ValidValue(value) {
			return nil, false
		}
		var seen bool
		if len(names) < cap(names) {
			seen = slices.Contains(names, name)
			names = append(names, name)
		} else {
			_, seen = h[name]
		}
		if seen || len(values) == 0 {
			h[name] = append(h[name], value)
			continue
		}
		vv := values[:1:1]
		vv[0], values = value, values[1:]
		h[name] = vv
	}
}

// maxScannedNames is how many names parseFields compares a name with, at
// most; it bounds the comparisons for a head of many short lines.
const maxScannedNames = 32

// trimBlanks trims spaces and tabs off both ends of s.
func trimBlanks(s string) string {
	for len(s) > 0 && isBlank(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// nextLine cuts the first line off s, without its "\n" or "\r\n".
func nextLine(s string) (line, rest string) {
	line, rest, _ = strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r"), rest
}

// framingOf sets the response's framing fields (ContentLength,
// TransferEncoding, Close; Connection, Transfer-Encoding and duplicate
// Content-Length fields removed) as http.ReadResponse does, and says how
// its body is read.
func framingOf(resp *http.Response, req *http.Request) (frame, bool) {
	h := resp.Header
	if pragma := h["Pragma"]; len(pragma) > 0 && pragma[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok {
		delete(h, "Transfer-Encoding")
		if resp.ProtoMinor == 1 { // ignored in HTTP/1.0
			if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
				return frame{}, false
			}
			chunked = true
		}
	}
	connection := h["Connection"]
	closeAsked := httpguts.HeaderValuesContainsToken(connection, "close")
	if resp.ProtoMinor == 0 {
		resp.Close = closeAsked || !httpguts.HeaderValuesContainsToken(connection, "keep-alive")
	} else if resp.Close = closeAsked; closeAsked {
		delete(h, "Connection")
	}
	length := int64(-1) // from Content-Length; -1: none
	if cl := h["Content-Length"]; len(cl) > 0 {
		first := strings.Trim(cl[0], " \t")
		for _, other := range cl[1:] {
			if strings.Trim(other, " \t") != first {
				return frame{}, false
			}
		}
		if len(cl) > 1 {
			h["Content-Length"] = []string{first}
		}
		if first == "" || len(first) > 18 || !allDigits(first) {
			return frame{}, false
		}
		length = 0
		for i := 0; i < len(first); i++ {
			length = length*10 + int64(first[i]-'0')
		}
	}
	if chunked {
		if _, ok := h["Trailer"]; ok {
			return frame{}, false // announced trailers: net/http's Response.Trailer
		}
		resp.TransferEncoding = []string{"chunked"}
	}
	isHead := req != nil && req.Method == http.MethodHead
	bodyAllowed := resp.StatusCode/100 != 1 && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified
	switch {
	case isHead:
		resp.ContentLength = length // as announced; nothing follows
		resp.Body = http.NoBody
		return frame{kind: noBody}, true
	case !bodyAllowed:
		resp.Body = http.NoBody
		return frame{kind: noBody}, true
	case chunked:
		delete(h, "Content-Length")
		resp.ContentLength = -1
		return frame{kind: chunkedBody, resp: resp}, true
	case length == 0:
		resp.Body = http.NoBody
		return frame{kind: noBody}, true
	case length > 0:
		resp.ContentLength = length
		return frame{kind: lengthBody, length: length}, true
	}
	resp.ContentLength, resp.Close = -1, true // the body ends when the connection does
	return frame{kind: untilCloseBody}, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// canonicalName is textproto.CanonicalMIMEHeaderKey(name) for a field
// name of token characters (RFC 9110's tchar), which textproto reads
// without complaint; ok is false for any other name. A name in canonical
// form already, as servers write most, is the name itself, found so in
// the same look at its bytes that checks them.
func canonicalName(name string) (canonical string, ok bool) {
	token, isCanonical := fieldline.ScanName(name)
	switch {
	case !token:
		return "", false
	case isCanonical:
		return name, true
	}
	return textproto.CanonicalMIMEHeaderKey(name), true
}
