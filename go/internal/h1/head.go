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
	// Every field line ends in CRLF: the head holds as many as it has
	// LFs, less the request line's and the empty line's.
	lines := strings.Count(rest, "\n") - 1
	header := make(http.Header, lines)
	values := ex.values[:] // one backing array for the values
	if lines > len(values) {
		values = make([]string, lines)
	}
	for {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" {
			break
		}
		name, value, ok := parseFieldLine(line)
		if !ok {
			return nil, 0, false
		}
		if vv := header[name]; vv != nil {
			header[name] = append(vv, value)
		} else {
			vv, values = values[:1:1], values[1:]
			vv[0] = value
			header[name] = vv
		}
	}
	req.Header = header
	hosts = header["Host"]
	if !frame(req, body) {
		return nil, 0, false
	}
	return hosts, n, true
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

// parseFieldLine splits a field line into its canonical name and its value
// without the whitespace around it; ok is false for a line net/http would
// refuse, join to the previous one (obs-fold), or read differently.
func parseFieldLine(line string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(line, ":")
	if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
		return "", "", false // a name with a space or no colon, a bare CR or LF, a control byte
	}
	// A valid name starts with no space: the line does not continue
	// another. The value holds no CR or LF, so trimming space and tab
	// trims what textproto trims.
	return textproto.CanonicalMIMEHeaderKey(name), strings.Trim(value, " \t"), true
}

// frame completes req as http.ReadRequest does after the header: Host
// (moved out of the header), Pragma, Close and the body's framing. It reports false for a request
// whose framing it leaves to net/http.
func frame(req *http.Request, body io.Reader) bool {
	h := req.Header
	if len(h["Host"]) > 1 || h["Transfer-Encoding"] != nil || len(h["Content-Length"]) > 1 {
		return false
	}
	req.Host = req.URL.Host
	if req.Host == "" {
		req.Host = h.Get("Host")
	}
	if pragma := h["Pragma"]; len(pragma) > 0 && pragma[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
	connection := h["Connection"]
	req.Close = httpguts.HeaderValuesContainsToken(connection, "close") ||
		req.ProtoMinor == 0 && !httpguts.HeaderValuesContainsToken(connection, "keep-alive")
	req.Body = http.NoBody
	if cl := h["Content-Length"]; cl != nil {
		n, err := strconv.ParseUint(cl[0], 10, 63) // refuses "", which net/http refuses too
		if err != nil {
			return false
		}
		req.ContentLength = int64(n)
		if n > 0 {
			req.Body = &fixedBody{src: io.LimitedReader{R: body, N: int64(n)}}
		}
	}
	delete(h, "Host") // it is req.Host now
	return true
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
		if !plainPathByte(path[i]) {
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
