package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// target is what a client request addresses: a bucket and, for object
// operations, a key. The key is kept in canonical escaped form so that no
// byte of it is lost or decoded twice on the way to the backend.
type target struct {
	bucket     string
	escapedKey string // "" for bucket operations; canonical SigV4 encoding
	key        string // escapedKey decoded, as the callables and checks see it
}

// route finds the target of r: virtual-hosted when its Host is a bucket
// under one of the proxy's domains (bucket.s3.example.com), else path
// style.
func route(r *http.Request, domains []string) (target, error) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	t, err := addressed(host, r.URL.EscapedPath(), domains)
	if err != nil {
		return target{}, err
	}
	if (t.bucket != "" || t.escapedKey != "") && !validBucketName(t.bucket) {
		// "//bucket/key" names no bucket, not the bucket list.
		return target{}, s3err.New(s3err.ErrInvalidBucketName)
	}
	if hasDotSegment(t.key) {
		return target{}, s3err.Newf(s3err.ErrInvalidURI, "Object keys with '.' or '..' path segments are not accepted.")
	}
	if !utf8.ValidString(t.key) {
		// The callables would see it with U+FFFD, the backend as sent.
		return target{}, s3err.Newf(s3err.ErrInvalidURI, "Object keys must be UTF-8.")
	}
	return t, nil
}

// addressed splits a request into bucket and key, virtual-hosted or path
// style.
func addressed(host, escapedPath string, domains []string) (target, error) {
	for _, domain := range domains {
		if bucket, ok := strings.CutSuffix(host, "."+domain); ok && bucket != "" {
			return targetOf(bucket, strings.TrimPrefix(escapedPath, "/"))
		}
	}
	return parsePathStyle(escapedPath)
}

// parsePathStyle splits "/bucket/key..." by the first '/' after the
// bucket. The key is everything after it, byte for byte: a bucket name can
// never occur inside the key's slot by accident.
func parsePathStyle(escapedPath string) (target, error) {
	rest := strings.TrimPrefix(escapedPath, "/")
	bucketPart, keyPart, _ := strings.Cut(rest, "/")
	bucket, err := url.PathUnescape(bucketPart)
	if err != nil {
		return target{}, s3err.New(s3err.ErrInvalidURI)
	}
	return targetOf(bucket, keyPart)
}

// targetOf is the target of a bucket and a key as the client escaped it:
// the key in canonical encoding, and decoded.
func targetOf(bucket, rawKey string) (target, error) {
	t := target{bucket: bucket}
	if rawKey == "" {
		return t, nil
	}
	var err error
	if t.escapedKey, err = sigv4.EncodePath(rawKey); err != nil {
		return target{}, s3err.New(s3err.ErrInvalidURI)
	}
	t.key, _ = url.PathUnescape(t.escapedKey) // canonical encoding always unescapes
	return t, nil
}

// copySourceRef is the object an x-amz-copy-source header names.
type copySourceRef struct {
	bucket, key string
	versionID   string
	hasVersion  bool
}

// canonical is the header as the backend gets it: the source the proxy
// read and authorized, in SigV4 encoding, so that no raw '+', space or
// other character is left for a backend to decode another way (versitygw
// reads '+' as a space, the proxy as a '+').
func (c copySourceRef) canonical() string {
	var b strings.Builder
	b.WriteString(c.bucket) // a valid bucket name needs no encoding
	for seg := range strings.SplitSeq(c.key, "/") {
		b.WriteByte('/')
		b.WriteString(sigv4.Encode(seg))
	}
	if c.hasVersion {
		b.WriteString("?versionId=")
		b.WriteString(sigv4.Encode(c.versionID))
	}
	return b.String()
}

// invalidCopySource is S3's refusal of an x-amz-copy-source header, naming
// the header and the part of it that is wrong.
func invalidCopySource(message, value string) error {
	return s3err.Newf(s3err.ErrInvalidArgument, "%s", message).With("ArgumentName", "x-amz-copy-source").With("ArgumentValue", truncate(value))
}

// copySource parses an x-amz-copy-source header: "bucket/key",
// "/bucket/key" or either with "?versionId=...", URL-encoded. A key is held
// to the rules of a key in the path: no dot segments (a backend resolving
// them would copy another object than the one authorized), UTF-8 (the
// validator sees it as the backend does). versionId is the only parameter
// S3 defines; any other is refused rather than passed on unread.
func copySource(header string) (copySourceRef, error) {
	src, params, hasParams := strings.Cut(header, "?")
	src = strings.TrimPrefix(src, "/")
	bucketPart, keyPart, _ := strings.Cut(src, "/")
	bucket, err1 := url.PathUnescape(bucketPart)
	key, err2 := url.PathUnescape(keyPart)
	if err1 != nil || err2 != nil {
		return copySourceRef{}, invalidCopySource("Invalid copy source encoding", header)
	}
	if bucket == "" || !validBucketName(bucket) {
		return copySourceRef{}, invalidCopySource("Invalid copy source bucket name", header)
	}
	if key == "" {
		return copySourceRef{}, invalidCopySource("Invalid copy source object key", "")
	}
	ref := copySourceRef{bucket: bucket, key: key}
	if hasParams && params != "" {
		q, err := url.ParseQuery(params)
		versions, has := q["versionId"]
		if err != nil || len(q) != 1 || !has || len(versions) != 1 || !utf8.ValidString(versions[0]) {
			return copySourceRef{}, s3err.Newf(s3err.ErrInvalidArgument, "The copy source may carry one versionId and no other parameter.")
		}
		ref.versionID, ref.hasVersion = versions[0], true
	}
	if hasDotSegment(key) {
		return copySourceRef{}, invalidCopySource("Invalid copy source object key", key)
	}
	if !utf8.ValidString(key) {
		return copySourceRef{}, s3err.Newf(s3err.ErrInvalidArgument, "Copy source keys must be UTF-8.")
	}
	return ref, nil
}
