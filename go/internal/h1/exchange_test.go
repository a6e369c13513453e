package h1

import (
	"testing"
	"unsafe"
)

// An exchange is allocated per request: it should fill, not overflow, the
// allocator's size class of 896 bytes. An object of this size with
// pointers carries an 8-byte header (Go 1.22 and later). If this fails
// after a Go upgrade (http.Request grew, say), lower inlineValues.
func TestExchangeSize(t *testing.T) {
	const sizeClass, mallocHeader = 896, 8
	if size := unsafe.Sizeof(exchange{}) + mallocHeader; size > sizeClass {
		t.Errorf("an exchange takes %d bytes with its allocation header; more than the size class of %d", size, sizeClass)
	}
}
