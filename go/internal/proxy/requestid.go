package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// NewRequestID makes an S3-looking request id (16 upper-case hex digits).
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
