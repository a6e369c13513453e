package proxy

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // S3's Content-MD5 is MD5 by definition
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/object-storage-proxy/osp/internal/awschunked"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// DeleteObjects (POST /bucket?delete) names its keys in the body, where a
// bucket-level check cannot see them. With a key-aware validator the proxy
// reads the body (it is small), verifies it, asks about each key as a
// DeleteObject, and answers as S3 does under an IAM policy: the allowed keys
// are deleted, each denied one comes back as an AccessDenied <Error>.

// Bounds of a DeleteObjects request, as S3 has them: at most 1000 keys, in a
// body that 1000 keys of 1024 bytes, escaped, fit in.
const (
	maxDeleteKeys = 1000
	maxDeleteBody = 2 << 20
	// maxDeleteResult bounds the backend's answer: 1000 entries, each at
	// most a key escaped (up to 6 bytes a byte), a version id and a message.
	maxDeleteResult = 8 << 20
)

// deleteDenial is what the backend's DeleteResult gets added: the keys the
// validator refused.
type deleteDenial struct {
	denied []deleteObject
	quiet  bool // list errors only, whatever the backend lists
}

// deleteObjects checks a DeleteObjects request key by key. It returns the
// forward with the body to send (the client's, or one naming only the
// allowed keys), or nil when it answered the request itself because every
// key was denied.
func (h *Handler) deleteObjects(ctx context.Context, w http.ResponseWriter, r *http.Request, auth authenticated, access s3op.Access, fw *forward) (*forward, error) {
	body, trailer, err := readDeleteBody(r, auth)
	if err != nil {
		return nil, err
	}
	sums, err := checkDeleteDigests(r.Header, body, trailer)
	if err != nil {
		return nil, err
	}
	req, err := parseDelete(body)
	if err != nil {
		return nil, err
	}
	var allowed, denied []deleteObject
	for _, obj := range req.objects {
		a := s3op.Access{Token: access.Token, Bucket: access.Bucket, Method: http.MethodDelete, Key: obj.key, Operation: "DeleteObject"}
		err := h.opts.Authorizer.Authorize(ctx, a, fw.bucket.TTL())
		switch {
		case err == nil:
			allowed = append(allowed, obj)
		case s3err.Is(err, s3err.ErrAccessDenied):
			denied = append(denied, obj)
		default:
			return nil, err
		}
	}
	if len(allowed) == 0 {
		writeDeleteResult(w, nil, denied)
		return nil, nil
	}
	if len(denied) > 0 {
		body = req.rewrite(allowed)
		fw.denial = &deleteDenial{denied: denied, quiet: strings.EqualFold(req.quiet, "true")}
	}
	fw.body = bufferedBody(body, sums.headersFor(body))
	fw.payload = fw.body.payload
	return fw, nil
}

// readDeleteBody reads a DeleteObjects body whole, verified against the
// signed payload hash or, for aws-chunked, its chunk signatures and
// trailer. It returns the body and the checksum trailer it carried, if any.
func readDeleteBody(r *http.Request, auth authenticated) ([]byte, string, error) {
	size := r.ContentLength
	trailer := ""
	if auth.payload.Streaming() {
		size, _ = decodedLength(r.Header)
		trailer = trailerName(r.Header)
	}
	if size > maxDeleteBody {
		return nil, "", s3err.New(s3err.ErrEntityTooLarge)
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, "", malformedXML()
	}
	// planBody for a bearer backend is exactly a verified plain body: the
	// payload hash checked when it is hex, aws-chunked decoded and checked;
	// nil for UNSIGNED-PAYLOAD.
	plan, err := planBody(r, auth, nothing)
	if err != nil {
		return nil, "", err
	}
	var src io.Reader = r.Body
	if plan != nil {
		src = plan.body
	}
	body, err := io.ReadAll(io.LimitReader(src, maxDeleteBody+1))
	var known *s3err.Error
	switch {
	case errors.As(err, &known):
		return nil, "", err
	case err != nil:
		return nil, "", s3err.Wrapf(err, s3err.ErrIncompleteBody, "The request body ended before its declared length.")
	case len(body) > maxDeleteBody:
		return nil, "", s3err.New(s3err.ErrEntityTooLarge)
	}
	return body, trailer, nil
}

// deleteChecksums are the digests a DeleteObjects request carried, all
// verified: S3 requires at least one.
type deleteChecksums struct {
	md5       bool     // Content-MD5
	checksums []string // x-amz-checksum-* header names, lower case
	trailer   string   // an aws-chunked checksum trailer, verified by the decoder
}

// checksumHeaders are the x-amz-checksum-* names that carry no digest.
var checksumHeaders = map[string]bool{"X-Amz-Checksum-Type": true, "X-Amz-Checksum-Algorithm": true, "X-Amz-Checksum-Mode": true}

// checkDeleteDigests verifies the body's Content-MD5 and x-amz-checksum-*
// headers and requires one of them (or a checksum trailer), as S3 does for
// DeleteObjects. A header given twice is refused: the backend might check
// the one the proxy did not.
func checkDeleteDigests(header http.Header, body []byte, trailer string) (deleteChecksums, error) {
	sums := deleteChecksums{trailer: trailer}
	if values, ok := header["Content-Md5"]; ok {
		want, err := base64.StdEncoding.DecodeString(values[0])
		if len(values) != 1 || err != nil || len(want) != md5.Size {
			return sums, s3err.New(s3err.ErrInvalidDigest)
		}
		got := md5.Sum(body) //nolint:gosec // S3's Content-MD5
		if !bytes.Equal(got[:], want) {
			return sums, s3err.New(s3err.ErrBadDigest)
		}
		sums.md5 = true
	}
	for name, values := range header {
		if !strings.HasPrefix(name, "X-Amz-Checksum-") || checksumHeaders[name] {
			continue
		}
		lower := strings.ToLower(name)
		alg := strings.TrimPrefix(lower, "x-amz-checksum-")
		hash, ok := awschunked.NewChecksum(lower)
		if !ok {
			return sums, s3err.Newf(s3err.ErrInvalidRequest, "The %s header names a checksum algorithm that is not supported.", lower)
		}
		want, err := base64.StdEncoding.DecodeString(values[0])
		if len(values) != 1 || err != nil || len(want) != hash.Size() {
			return sums, s3err.Newf(s3err.ErrInvalidRequest, "Value for %s header is invalid.", lower)
		}
		hash.Write(body)
		if !bytes.Equal(hash.Sum(nil), want) {
			return sums, s3err.Newf(s3err.ErrBadDigest, "The %s you specified did not match the calculated checksum.", strings.ToUpper(alg))
		}
		sums.checksums = append(sums.checksums, lower)
	}
	if !sums.md5 && len(sums.checksums) == 0 && sums.trailer == "" {
		return sums, s3err.Newf(s3err.ErrInvalidRequest, "Missing required header for this request: Content-Md5.")
	}
	return sums, nil
}

// headersFor returns the digest headers of the body the backend gets,
// computed anew with the algorithms the client used: a rewritten body
// needs new ones, and a trailer's checksum becomes a header, the body
// going on in one piece.
func (s deleteChecksums) headersFor(body []byte) http.Header {
	h := http.Header{}
	if s.md5 {
		sum := md5.Sum(body) //nolint:gosec // S3's Content-MD5
		h.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	names := s.checksums
	if s.trailer != "" {
		names = append(names, s.trailer)
	}
	for _, name := range names {
		hash, _ := awschunked.NewChecksum(name) // verified above
		hash.Write(body)
		h.Set(name, base64.StdEncoding.EncodeToString(hash.Sum(nil)))
	}
	return h
}

// bufferedBody is a body the proxy holds whole, sent with its length, its
// sha256 as the payload hash, and header set on the outgoing request.
func bufferedBody(body []byte, header http.Header) *upstreamBody {
	sum := sha256.Sum256(body)
	return &upstreamBody{
		body:          bytes.NewReader(body),
		contentLength: int64(len(body)),
		payload:       sigv4.PayloadMode(hex.EncodeToString(sum[:])),
		setHeader:     header,
	}
}

// writeDeleteResult answers a DeleteObjects request: entries (the
// backend's Deleted and Error elements, raw) followed by an AccessDenied
// error for each denied key.
func writeDeleteResult(w http.ResponseWriter, entries []byte, denied []deleteObject) {
	body := deleteResult(entries, denied)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// mergeDeleteResult answers with the backend's DeleteResult and the denied
// keys' errors. The backend's other headers pass as for any response.
func (h *Handler) mergeDeleteResult(w *responseWriter, r *http.Request, x *exchange, resp *http.Response, d *deleteDenial) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxDeleteResult+1))
	if err == nil && len(raw) > maxDeleteResult {
		err = errors.New("the backend's DeleteResult is too large")
	}
	var entries []byte
	if err == nil {
		entries, err = deleteResultEntries(raw, d.quiet)
	}
	if err != nil {
		h.fail(w, r, x, s3err.Wrapf(err, s3err.ErrBadGateway, "The backend of bucket %s answered DeleteObjects with a result the proxy could not read; some keys may have been deleted.", x.forward.target.bucket).WithResource(x.forward.target.bucket))
		return
	}
	copyResponseHeader(w.Header(), resp.Header)
	w.Header().Del("Content-Md5")
	writeDeleteResult(w, entries, d.denied)
}

func malformedXML() error {
	return s3err.New(s3err.ErrMalformedXML)
}
