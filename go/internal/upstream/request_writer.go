package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/object-storage-proxy/osp/internal/fieldline"
)

// writeRequest writes req to w as req.Write does (the same request line,
// Host, User-Agent, framing headers, header fields and body), without its
// generic machinery: no transferWriter, no sorted copy of the header, no
// fmt. Header fields come in map order; HTTP gives their order no meaning
// across names, and a name's values keep theirs.
//
// It covers the requests the proxy sends: a request it does not cover
// (see plainHost, requestURI, bodyLength) goes by req.Write, which then
// also returns its own errors for a malformed one.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	head, ok := plainHead(req)
	if !ok {
		return req.Write(w)
	}
	if err := head.write(w, req); err != nil {
		return err
	}
	if req.Body == nil {
		return nil
	}
	return writeBody(w, req.Body, head.length)
}

// requestHead is what writeRequest takes of a request it writes itself.
type requestHead struct {
	host, path string
	query      *string // nil: no "?"
	length     int64   // the body's framing: -1 chunked
}

// plainHead returns req's head, or false for a request writeRequest
// leaves to req.Write.
func plainHead(req *http.Request) (requestHead, bool) {
	host, hostOK := plainHost(req)
	path, query, uriOK := requestURI(req)
	length, lengthOK := bodyLength(req)
	if !hostOK || !uriOK || !lengthOK || len(req.TransferEncoding) > 0 || req.Trailer != nil || req.Close {
		return requestHead{}, false
	}
	return requestHead{host: host, path: path, query: query, length: length}, true
}

// write writes the request line and header fields of req, up to the
// blank line that ends them.
func (h requestHead) write(w *bufio.Writer, req *http.Request) error {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(h.path)
	if h.query != nil {
		w.WriteByte('?')
		w.WriteString(*h.query)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(h.host)
	w.WriteString("\r\n")
	userAgent := defaultUserAgent
	if values, ok := req.Header["User-Agent"]; ok {
		userAgent = "" // as Header.Get for a name without values
		if len(values) > 0 {
			userAgent = values[0]
		}
	}
	if userAgent != "" { // before cleaning: a blank one is sent empty
		fieldline.Write(w, "User-Agent", cleanValue(userAgent))
	}
	switch {
	case h.length < 0:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case h.length > 0 || sendsZeroLength(method):
		w.WriteString("Content-Length: ")
		// Digits appended to the writer's free space: an array of
		// their own would escape (to the socket's Write) and cost an
		// allocation per request.
		w.Write(strconv.AppendInt(w.AvailableBuffer(), h.length, 10))
		w.WriteString("\r\n")
	}
	for name, values := range req.Header {
		if writtenApart(name) || !httpguts.ValidHeaderFieldName(name) {
			continue // as req.Write: invalid names are dropped
		}
		for _, v := range values {
			fieldline.Write(w, name, cleanValue(v))
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

// defaultUserAgent is req.Write's User-Agent for a request without one.
const defaultUserAgent = "Go-http-client/1.1"

// writtenApart are the header names req.Write takes from elsewhere
// (Host, the framing) or writes first (User-Agent): never copied as they
// are. (A switch, not a map: no hash of every name of every request.)
func writtenApart(name string) bool {
	switch name {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// cleanValue is a header value as req.Write sends it: CR and LF turned
// into spaces (a value cannot end the field or start another), and
// surrounding white space trimmed. Most values need neither, and are
// returned as they are, after a look at their ends and two byte searches.
func cleanValue(v string) string {
	if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
		v = newlinesToSpaces.Replace(v)
	}
	if v == "" || (!isBlank(v[0]) && !isBlank(v[len(v)-1])) {
		return v
	}
	return strings.Trim(v, " \t")
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

var newlinesToSpaces = strings.NewReplacer("\r", " ", "\n", " ")

// plainHost is the Host req.Write sends, when it needs none of the
// rewriting req.Write does (punycode, dropping an invalid one, removing an
// IPv6 zone): an ASCII, valid, zone-free Host, or the URL's.
func plainHost(req *http.Request) (string, bool) {
	if req.URL == nil {
		return "", false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "", false
		}
	}
	if !httpguts.ValidHostHeader(host) || (strings.HasPrefix(host, "[") && strings.Contains(host, "%")) {
		return "", false
	}
	return host, true
}

// requestURI is req.URL.RequestURI() in two parts, the path and the query
// (nil: no "?"), for an origin-form target without control characters
// (which req.Write refuses).
func requestURI(req *http.Request) (path string, query *string, ok bool) {
	u := req.URL
	if u == nil || u.Opaque != "" || req.Method == http.MethodConnect {
		return "", nil, false
	}
	path = u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.ForceQuery || u.RawQuery != "" {
		query = &u.RawQuery
	}
	if hasControl(path) || hasControl(u.RawQuery) {
		return "", nil, false
	}
	return path, query, true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// bodyLength is the length req.Write frames the body with (-1: chunked),
// for the requests whose framing needs no guess: req.Write reads the first
// byte of a GET's body of unknown length, under a timer, to choose.
func bodyLength(req *http.Request) (int64, bool) {
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return 0, req.ContentLength == 0 || req.Body == http.NoBody
	case req.ContentLength > 0:
		return req.ContentLength, true
	case usuallyWithoutBody(req.Method) || req.Method == "": // "": a GET, to req.Write
		return 0, false
	}
	return -1, true // a body of unknown length (or ContentLength 0 with a body: unknown too)
}

// usuallyWithoutBody are the methods whose body of unknown length
// req.Write probes (net/http's requestMethodUsuallyLacksBody).
func usuallyWithoutBody(method string) bool {
	switch method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		return true
	}
	return false
}

// sendsZeroLength says req.Write announces an empty body as
// "Content-Length: 0": for the methods servers expect a length with.
func sendsZeroLength(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// writeBody sends body (closed after, as req.Write closes it) framed by
// length: that many bytes, or chunked (-1). Headers go out before a body
// is read: the body may be a client's upload still arriving, and the
// backend may answer the head alone (an early refusal).
func writeBody(w *bufio.Writer, body io.ReadCloser, length int64) (err error) {
	defer func() {
		if cerr := body.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if length == 0 {
		_, err := io.Copy(io.Discard, body) // an empty body, as req.Write reads it
		return bodyCopyError(err)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if length < 0 {
		bp := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(bp)
		if _, err := io.CopyBuffer(chunkWriter{w}, body, *bp); err != nil {
			return bodyCopyError(err)
		}
		_, err := w.WriteString("0\r\n\r\n") // the last chunk, no trailer
		return err
	}
	// The bufio.Writer, empty, hands the copy to the socket's ReadFrom.
	n, err := io.Copy(w, io.LimitReader(body, length))
	if err != nil {
		return bodyCopyError(err)
	}
	// A body longer than announced is read to its end, and refused.
	extra, err := io.Copy(io.Discard, body)
	if err != nil {
		return bodyCopyError(err)
	}
	if n+extra != length {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", length, n+extra)
	}
	return nil
}

// copyError is an error while a request body was copied to the backend:
// the body's read or the socket's write. As net/http's, it does not
// unwrap: which of the two failed is told by the connection
// (conn.writeFailed) and by the body itself, never by the error, so that
// a client's stalled upload is not taken for the backend's timeout.
type copyError struct{ err error }

func (e copyError) Error() string { return e.err.Error() }

func bodyCopyError(err error) error {
	if err == nil {
		return nil
	}
	return copyError{err}
}

// chunkWriter writes each piece as one chunk and sends it at once, as
// req.Write does: the backend gets what the client sent as it arrives.
type chunkWriter struct{ w *bufio.Writer }

func (cw chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // a chunk of size 0 would end the body
	}
	cw.w.Write(strconv.AppendInt(cw.w.AvailableBuffer(), int64(len(p)), 16))
	cw.w.WriteString("\r\n")
	cw.w.Write(p)
	cw.w.WriteString("\r\n")
	if err := cw.w.Flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}
