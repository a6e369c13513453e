package proxy

import (
	"crypto/rand"
	"unsafe"
)

// NewRequestID makes an S3-looking request id (16 upper-case hex digits).
func NewRequestID() string {
	var id requestID
	id.fill()
	return string(id[:])
}

// requestID is the digits of a request id.
type requestID [16]byte

// fill sets id to new random digits.
func (id *requestID) fill() {
	const digits = "0123456789ABCDEF"
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	for i, c := range b {
		id[2*i], id[2*i+1] = digits[c>>4], digits[c&0x0f]
	}
}

// view is id's digits as a string, without a copy. A string's bytes must
// never change, so id may not be written once viewed: the only id viewed
// is an exchange's (exchange.id), filled once in ServeHTTP before any
// view; an exchange is allocated per request and never reused (not
// pooled), and a view keeps it alive for as long as the view is used
// (TestRequestIDsStay checks that ids seen earlier keep their digits).
func (id *requestID) view() string { return unsafe.String(&id[0], len(id)) }
