package proxy

import (
	"net/http"
	"net/url"
	"sync"
)

// backendRequest is the reusable part of a request to a backend: the
// Request itself, its URL, its header map, and one-value slices for the
// headers the proxy sets itself. Built afresh for every request these cost a handful of
// allocations that the signer and the transport only read; pooled, the
// map keeps its buckets and the slices their arrays.
//
// One goes back to the pool (release) only when nothing uses it any more:
// after the backend's response body is closed, as http.RoundTripper
// requires before a request is reused (upstream's body.Close also waits
// for the goroutine that writes a request with a body), and never after a
// failed RoundTrip, whose transport may still hold it (it is then left to
// the garbage collector).
type backendRequest struct {
	req    http.Request
	url    url.URL
	header http.Header
	// The values of headers the proxy sets. The signer appends its
	// X-Amz-Date and Authorization to the slice it finds under the name
	// ([:0]), so handing it these makes it write into their arrays.
	payloadHash, date, authorization, userAgent [1]string
}

var backendRequests = sync.Pool{New: func() any { return &backendRequest{header: make(http.Header, 16)} }}

// newBackendRequest takes a cleared backendRequest from the pool.
func newBackendRequest() *backendRequest { return backendRequests.Get().(*backendRequest) }

// release clears b, so that the pool keeps nothing of the request (its
// strings are the client's), and returns it to the pool. Nothing may use
// b or a request built on it afterwards.
func (b *backendRequest) release() {
	clear(b.header)
	*b = backendRequest{header: b.header}
	backendRequests.Put(b)
}

// request is the backend's request for r, on b's URL and header map, in
// r's context: the client going away cancels it. It is b's own Request:
// WithContext, the one setter of a context, would allocate a new one per
// request.
func (b *backendRequest) request(r *http.Request, host string) *http.Request {
	out := &b.req
	// A copy of r for its context, as WithContext copies it; then every
	// exported field anew, so that nothing of the client's request (its
	// TLS, RemoteAddr, RequestURI, body...) stays on the backend's
	// (TestBackendRequestKeepsNothingOfTheClients checks each field). The
	// unexported ones besides the context are ServeMux's path values,
	// which neither the signer nor the transport reads.
	*out = *r
	out.Method, out.URL, out.Host, out.Header = r.Method, &b.url, host, b.header
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Body, out.GetBody, out.ContentLength, out.TransferEncoding, out.Close, out.Trailer = nil, nil, 0, nil, false, nil
	out.Form, out.PostForm, out.MultipartForm = nil, nil, nil
	out.RemoteAddr, out.RequestURI, out.TLS, out.Cancel, out.Response, out.Pattern = "", "", nil, nil, nil, ""
	return out
}

// setPayloadHash sets X-Amz-Content-Sha256, which the backend is told and
// the signer signs.
func (b *backendRequest) setPayloadHash(hash string) {
	b.payloadHash[0] = hash
	b.header["X-Amz-Content-Sha256"] = b.payloadHash[:]
}

// reserveSignature gives the signer b's arrays for the headers it sets.
func (b *backendRequest) reserveSignature() {
	b.header["X-Amz-Date"] = b.date[:0]
	b.header["Authorization"] = b.authorization[:0]
}
