package proxy

import (
	"net/http"
	"net/url"
	"sync"
)

// backendRequest is the reusable part of a request to a backend: its URL,
// its header map, and one-value slices for the headers the proxy sets
// itself. Built afresh for every request these cost a handful of
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
// r's context: the client going away cancels it.
func (b *backendRequest) request(r *http.Request, host string) *http.Request {
	return (&http.Request{
		Method:     r.Method,
		URL:        &b.url,
		Host:       host,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     b.header,
	}).WithContext(r.Context()) // the one allocation: ctx has no setter
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
