package proxy

import (
	"net/http"
	"strings"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// maxHeaderSection is S3's limit on a request's header fields (names and
// values, the request line aside).
const maxHeaderSection = 8 << 10

// screen refuses, before authentication, a request no S3 server would
// take: a method S3 does not have, a plain body in HTTP chunked framing,
// an oversized header section.
func screen(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions:
	default:
		return s3err.New("MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	if len(r.TransferEncoding) > 0 {
		// Go drops a Content-Length sent beside Transfer-Encoding, so a
		// request smuggled after the chunked body would be read as the
		// next one on this connection: it is the last.
		w.Header().Set("Connection", "close")
		// S3 takes HTTP chunked framing only around aws-chunked, whose own
		// framing and decoded length say where the object ends (SDKs
		// stream bodies of unknown length so); anything else it refuses.
		if !isStreaming(r.Header.Get("X-Amz-Content-Sha256")) {
			return s3err.New("NotImplemented", "A header you provided implies functionality that is not implemented: Transfer-Encoding.")
		}
	}
	size := 0
	for name, values := range r.Header {
		for _, v := range values {
			size += len(name) + len(v) + len(": \r\n")
		}
	}
	if size > maxHeaderSection {
		return s3err.New("RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed size.")
	}
	return nil
}

// validBucketName accepts what a bucket can be named under S3's current
// rules or its legacy ones (us-east-1 once allowed upper case and '_', up
// to 255 characters); anything else is refused before it is looked up.
func validBucketName(name string) bool {
	if name == "" || len(name) > 255 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// hasDotSegment reports whether a key has a "." or ".." segment. S3 would
// store "a/../b" as it is, but a backend or anything between that
// resolves dot segments would take /bucket/../other to another bucket
// than the one authorized.
func hasDotSegment(key string) bool {
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
