package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// maxHeaderSection is S3's limit on a request's header fields (names and
// values, the request line aside).
const maxHeaderSection = 8 << 10

// screen refuses, before authentication, a request no S3 server would
// take: a method S3 does not have, a plain body in HTTP chunked framing,
// an oversized header section. It returns the request's query, parsed
// (strictly) once for all that reads it.
func screen(w http.ResponseWriter, r *http.Request) (sigv4.Query, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions:
	default:
		return sigv4.Query{}, s3err.New(s3err.ErrMethodNotAllowed)
	}
	if len(r.TransferEncoding) > 0 {
		// Go drops a Content-Length sent beside Transfer-Encoding, so a
		// request smuggled after the chunked body would be read as the
		// next one on this connection: it is the last.
		w.Header().Set("Connection", "close")
		// S3 takes HTTP chunked framing only around aws-chunked, whose own
		// framing and decoded length say where the object ends (SDKs
		// stream bodies of unknown length so); anything else it refuses.
		if !sigv4.PayloadMode(r.Header.Get("X-Amz-Content-Sha256")).Streaming() {
			return sigv4.Query{}, s3err.Newf(s3err.ErrNotImplemented, "A header you provided implies functionality that is not implemented: Transfer-Encoding.")
		}
	}
	size := 0
	underscored := "" // a name with '_', if any (one pass over the header)
	for name, values := range r.Header {
		for _, v := range values {
			size += len(name) + len(v) + len(": \r\n")
		}
		if underscored == "" && strings.IndexByte(name, '_') >= 0 {
			underscored = name
		}
	}
	if size > maxHeaderSection {
		return sigv4.Query{}, s3err.New(s3err.ErrRequestHeaderSectionTooLarge).
			With("MaxSizeAllowed", strconv.Itoa(maxHeaderSection))
	}
	if underscored != "" {
		// Servers that fold '_' into '-' would read X_Amz_Copy_Source
		// as a header the client never signed as such.
		return sigv4.Query{}, s3err.Newf(s3err.ErrInvalidArgument, "Header names with '_' are not accepted: %s.", truncate(underscored))
	}
	if err := screenCopySource(r.Header["X-Amz-Copy-Source"]); err != nil {
		return sigv4.Query{}, err
	}
	return screenQuery(r.URL.RawQuery)
}

// screenCopySource refuses a copy source the proxy could check one way
// and a backend read another: given twice, present but empty (which would
// make the request a PutObject whose source nobody checked), or a source
// key with dot segments or not UTF-8.
func screenCopySource(values []string) error {
	switch {
	case len(values) == 0:
		return nil
	case len(values) > 1:
		return s3err.Newf(s3err.ErrInvalidArgument, "The x-amz-copy-source header appears more than once.")
	case strings.TrimSpace(values[0]) == "":
		return s3err.Newf(s3err.ErrInvalidArgument, "The x-amz-copy-source header is empty; copy source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	_, err := copySource(values[0])
	return err
}

// screenQuery parses the query and refuses one the proxy and a backend
// could read differently: one the strict parse refuses (a lenient one
// would silently skip a parameter that is still forwarded), a parameter
// not UTF-8 once decoded (the callables would see it changed), or a copy
// source given as a query parameter (S3 takes x-amz-* headers in the query
// of presigned URLs; the proxy checks only the header).
func screenQuery(raw string) (sigv4.Query, error) {
	q, err := sigv4.ParseQuery(raw)
	if err != nil {
		return sigv4.Query{}, s3err.Newf(s3err.ErrInvalidArgument, "The query string is not valid.")
	}
	for _, p := range q.Params {
		if len(p.Key) >= len("x-amz-copy-source") && strings.EqualFold(p.Key[:len("x-amz-copy-source")], "x-amz-copy-source") {
			return sigv4.Query{}, s3err.Newf(s3err.ErrInvalidArgument, "The copy source must be given in the x-amz-copy-source header, not the query.")
		}
		if !utf8.ValidString(p.Key) || !utf8.ValidString(p.Value) {
			return sigv4.Query{}, s3err.Newf(s3err.ErrInvalidArgument, "Query parameters must be UTF-8.")
		}
	}
	return q, nil
}

// validBucketName accepts what a bucket can be named under S3's current
// rules or its legacy ones (config.ValidBucketName, which cos_map patterns
// follow too); anything else is refused before it is looked up.
func validBucketName(name string) bool { return config.ValidBucketName(name) }

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
