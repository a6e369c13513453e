package proxy

import "crypto/rand"

// NewRequestID makes an S3-looking request id (16 upper-case hex digits).
func NewRequestID() string {
	const digits = "0123456789ABCDEF"
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	var id [16]byte
	for i, c := range b {
		id[2*i], id[2*i+1] = digits[c>>4], digits[c&0x0f]
	}
	return string(id[:])
}
