package h1

import (
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/object-storage-proxy/osp/internal/fieldline"
)

// parseHead reads the request head at the start of buf into ex.req as
// http.ReadRequest would, when it has the common shape: whole in buf, CRLF
// line ends, an HTTP/1.0 or 1.1 request line, field names that are tokens,
// no folded lines, no Transfer-Encoding, at most one Content-Length and
// one Host.
// Anything else, ok false, is left to http.ReadRequest, so that what is
// refused, and in which words, stays net/http's; FuzzParseHead holds the
// two to the same result.
//
// The request's strings (method, target, names and values) are substrings
// of one copy of the head: the handler may keep any of them. A body of
// declared length is read from body, which must follow buf's head. hosts
// are the values of the Host lines, which the request's header leaves out
// as http.ReadRequest's does; n is the head's length.
func parseHead(buf []byte, body io.Reader, ex *exchange) (hosts []string, n int, ok bool) {
	req := &ex.req
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, 0, false // not all here yet
	}
	n = end + len("\r\n\r\n")
	head := string(buf[:n])
	line, rest, _ := strings.Cut(head, "\r\n")
	if !parseRequestLine(line, req, &ex.url) {
		return nil, 0, false
	}
	// The field lines, in order; a head of the usual size has them all on
	// the stack.
	var stack [inlineValues]fieldLine
	lines := fieldLines(stack[:0])
	for !strings.HasPrefix(rest, "\r\n") { // the empty line ends the head
		var l fieldLine
		l.name, l.value, rest, ok = parseFieldLine(rest)
		if !ok {
			return nil, 0, false
		}
		lines = append(lines, l)
	}
	req.Header, hosts = lines.header(ex.values[:])
	if !frame(req, body, lines, hosts, &ex.fixedBody) {
		return nil, 0, false
	}
	return hosts, n, true
}

// fieldLine is a field line of a request head: its name in canonical form
// and its value.
type fieldLine struct{ name, value string }

// fieldLines are the field lines of a head, in order. Asked about a name,
// they compare it with each line's: for the few lines of a head, cheaper
// than a lookup in the header map.
type fieldLines []fieldLine

// maxScannedLines is the most lines header compares a name with, for one
// seen before (then it looks the name up in the map): it bounds the
// comparisons at maxScannedLines per line for a head of many short
// lines.
const maxScannedLines = 32

// header returns the lines as an http.Header, the values of their names in
// order, as textproto reads them, but for the Host lines, whose values are
// hosts: http.ReadRequest's header leaves them out (they make req.Host),
// and one not put in the map is not deleted from it. The values' slices
// share the backing array values, if it is large enough.
func (ls fieldLines) header(values []string) (h http.Header, hosts []string) {
	if len(values) < len(ls) {
		values = make([]string, len(ls))
	}
	h = make(http.Header, len(ls))
	for i, l := range ls {
		if l.name == "Host" {
			if hosts == nil {
				hosts, values = values[:1:1], values[1:]
				hosts[0] = l.value
			} else {
				hosts = append(hosts, l.value)
			}
			continue
		}
		var seen bool
		if i <= maxScannedLines {
			seen = ls[:i].count(l.name) > 0
		} else {
			_, seen = h[l.name]
		}
		if seen {
			h[l.name] = append(h[l.name], l.value)
			continue
		}
		vv := values[:1:1]
		values = values[1:]
		vv[0] = l.value
		h[l.name] = vv
	}
	return h, hosts
}

// count returns how many lines have the name.
func (ls fieldLines) count(name string) int {
	n := 0
	for _, l := range ls {
		if l.name == name {
			n++
		}
	}
	return n
}

// parseRequestLine parses the first line of a head, as net/http does,
// into req: method, target and its URL (in u if the target is of the
// common shape, see parseOriginForm), protocol.
func parseRequestLine(line string, req *http.Request, u *url.URL) bool {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || strings.IndexByte(line, '\n') >= 0 || !httpguts.ValidHeaderFieldName(method) {
		return false
	}
	switch proto {
	case "HTTP/1.1":
		req.ProtoMinor = 1
	case "HTTP/1.0":
		req.ProtoMinor = 0
	default:
		return false
	}
	if method == http.MethodConnect { // its target may be an authority, which net/http parses apart
		return false
	}
	if !parseOriginForm(target, u) {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return false
		}
	}
	req.Method, req.RequestURI, req.Proto, req.ProtoMajor, req.URL = method, target, proto, 1, u
	return true
}

// parseFieldLine reads the field line at the start of s, up to its CRLF,
// into its canonical name and its value without the space and tab around
// it; rest is what follows the line. ok is false for a line net/http would
// refuse, join to the previous one (obs-fold), or read differently: a name
// that is not a token (a space before the colon, a line starting with
// space), a missing colon, a control byte other than tab in the value, a
// CR without LF. s must hold CRLF after the line (the head's end does).
//
// The name is checked and found canonical in one pass (fieldline.ScanName).
func parseFieldLine(s string) (name, value, rest string, ok bool) {
	colon := strings.IndexByte(s, ':') // maybe on a later line: then the name holds CR, not a token
	if colon <= 0 {
		return "", "", "", false
	}
	name = s[:colon]
	token, canonical := fieldline.ScanName(name)
	if !token {
		return "", "", "", false
	}
	s = s[colon+1:]
	cr := strings.IndexByte(s, '\r')
	if cr < 0 || !strings.HasPrefix(s[cr:], "\r\n") {
		return "", "", "", false // a bare CR
	}
	value, rest = s[:cr], s[cr+len("\r\n"):]
	if !fieldline.ValidValue(value) {
		return "", "", "", false // a control byte: LF, NUL...
	}
	if !canonical {
		name = canonicalName(name)
	}
	return name, trimSpaceTab(value), rest, true
}

// trimSpaceTab is strings.Trim(s, " \t") without its cutset's setup.
func trimSpaceTab(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// canonicalName is textproto.CanonicalMIMEHeaderKey of a token that is not
// in canonical form, without its allocation for the names that S3 clients
// send in other forms (all lower case, Content-MD5, X-Amz-Content-SHA256).
func canonicalName(token string) string {
	var buf [40]byte
	if len(token) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(token)
	}
	b := buf[:len(token)]
	upper := true
	for i := range len(token) {
		c := token[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if name, ok := commonNames[string(b)]; ok {
		return name
	}
	return string(b)
}

// commonNames holds the canonical names canonicalName returns without an
// allocation; it is never changed.
var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, name := range []string{
		"Accept", "Accept-Encoding", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "Authorization",
		"Cache-Control", "Connection", "Content-Disposition", "Content-Encoding", "Content-Length",
		"Content-Md5", "Content-Type", "Date", "Expect", "Host", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Unmodified-Since", "Range", "Transfer-Encoding", "User-Agent",
		"X-Amz-Checksum-Crc32", "X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme", "X-Amz-Checksum-Sha1",
		"X-Amz-Checksum-Sha256", "X-Amz-Content-Sha256", "X-Amz-Copy-Source", "X-Amz-Date",
		"X-Amz-Decoded-Content-Length", "X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Security-Token",
		"X-Amz-Trailer", "X-Amz-User-Agent", "X-Forwarded-For", "X-Forwarded-Proto",
	} {
		m[name] = name
	}
	return m
}()

// frame completes req as http.ReadRequest does after the header, with the
// head's field lines and the values of its Host lines (which header left
// out of the map): Host, Pragma, Close and the body's framing (a body of
// declared length is fixed, reading body). It reports false for a request
// whose framing it leaves to net/http.
func frame(req *http.Request, body io.Reader, lines fieldLines, hosts []string, fixed *fixedBody) bool {
	h := req.Header
	f := lines.framing()
	if len(hosts) > 1 || f.transferEncodings > 0 || f.contentLengths > 1 {
		return false
	}
	req.Host = req.URL.Host
	if req.Host == "" && len(hosts) == 1 {
		req.Host = hosts[0]
	}
	if f.pragma == "no-cache" && f.cacheControls == 0 {
		h["Cache-Control"] = []string{"no-cache"}
	}
	var connection []string
	if f.connections > 0 {
		connection = h["Connection"]
	}
	req.Close = httpguts.HeaderValuesContainsToken(connection, "close") ||
		req.ProtoMinor == 0 && !httpguts.HeaderValuesContainsToken(connection, "keep-alive")
	req.Body = http.NoBody
	if f.contentLengths == 1 {
		n, err := strconv.ParseUint(f.contentLength, 10, 63) // refuses "", which net/http refuses too
		if err != nil {
			return false
		}
		req.ContentLength = int64(n)
		if n > 0 {
			fixed.src = io.LimitedReader{R: body, N: int64(n)}
			req.Body = fixed
		}
	}
	return true
}

// framingLines is what frame needs of a head's field lines but Host:
// how many lines have each name it looks at, and the first one's value.
type framingLines struct {
	contentLengths, transferEncodings, cacheControls, connections, pragmas int
	contentLength, pragma                                                  string
}

// framing finds what frame needs in one pass over the lines (a switch
// on each name), not one pass a name.
func (ls fieldLines) framing() (f framingLines) {
	for _, l := range ls {
		switch l.name {
		case "Content-Length":
			if f.contentLengths++; f.contentLengths == 1 {
				f.contentLength = l.value
			}
		case "Pragma":
			if f.pragmas++; f.pragmas == 1 {
				f.pragma = l.value
			}
		case "Transfer-Encoding":
			f.transferEncodings++
		case "Cache-Control":
			f.cacheControls++
		case "Connection":
			f.connections++
		}
	}
	return f
}

// parseOriginForm parses the most common request target, a path and maybe
// a query, into u as url.ParseRequestURI would, when the path needs
// neither unescaping nor a RawPath: only bytes that url.URL.EscapedPath
// leaves as they are, no '%'. ok is false for any other target, which is
// left to url.ParseRequestURI; FuzzParseHead holds the two to one result.
func parseOriginForm(target string, u *url.URL) (ok bool) {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := range len(path) {
		if !plainPathBytes[path[i]] {
			return false
		}
	}
	for i := range len(query) {
		if c := query[i]; c < ' ' || c == 0x7f {
			return false // url.Parse refuses a control byte
		}
	}
	// "/p?" keeps its empty query: ForceQuery.
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPathByte says c stands for itself in a path: url.URL escapes none
// of these in a path.
func plainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.~$&+,/:;=@", c) >= 0
}

// plainPathBytes is plainPathByte as a table, for parseOriginForm's loop
// over every byte of a path: one lookup, not a switch and a search. It is
// never changed.
var plainPathBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = plainPathByte(byte(c))
	}
	return t
}()
