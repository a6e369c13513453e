package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/object-storage-proxy/osp/internal/awschunked"
	"github.com/object-storage-proxy/osp/internal/integrity"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// upstreamBody is how an aws-chunked client body goes to the backend: the
// proxy decodes and verifies it, and re-frames it as its own unsigned
// aws-chunked body (STREAMING-UNSIGNED-PAYLOAD-TRAILER) carrying the
// client's checksum trailer, if any. The final chunk and the trailer are
// sent only once the client's body is verified to its end, so a backend
// never sees a complete upload that failed verification: a plain body of
// known length would not do, as some S3 servers (versitygw) store a body
// cut short by a closed connection.
type upstreamBody struct {
	body          io.Reader
	contentLength int64
	decodedLength int64             // for the proxy's framing: the object's size
	payload       sigv4.PayloadMode // what the backend is told of the body
	framed        bool              // the proxy's own aws-chunked framing
	trailer       string            // x-amz-trailer for the backend, "" for none

	// setHeader is set on the outgoing request: the digests of a body the
	// proxy read whole (DeleteObjects).
	setHeader http.Header

	mu  sync.Mutex
	err error // the first failure of the client's body, for the client
}

// bodyCheck is what a backend can check of an upload's body, which decides
// how the proxy sends it there.
type bodyCheck int

const (
	// hashAndFraming: an HMAC backend (the default). It checks a signed
	// payload hash and takes the proxy's own aws-chunked framing, so a
	// body the proxy has to verify goes framed and completes only once
	// its final chunk is sent.
	hashAndFraming bodyCheck = iota
	// hashOnly: an HMAC backend sent plain bodies (cos_map upload_framing
	// "plain", for servers such as SeaweedFS that refuse unsigned
	// aws-chunked without a trailer). It checks a signed payload hash;
	// any other body goes plain with its last byte held back until it is
	// verified, so such a backend must refuse a body shorter than its
	// Content-Length (as SeaweedFS does).
	hashOnly
	// nothing: a bearer-token backend checks no payload hash; the proxy
	// verifies a signed one itself and holds the last byte back.
	nothing
)

// plain reports whether bodies the proxy verifies go as plain bytes.
func (c bodyCheck) plain() bool { return c != hashAndFraming }

// planBody decides how the client's body goes upstream, or returns nil to
// pass it through untouched. Backends that check a signed payload hash get
// such bodies as they came. Bodies the backend cannot check (aws-chunked,
// UNSIGNED-PAYLOAD) are verified by the proxy and sent either in its own
// aws-chunked framing or, for plain backends, as plain bytes with the last
// byte held back until the body is verified, so a backend that honours
// Content-Length never gets a whole bad body. Bearer backends check no
// hash, so for them the proxy verifies a signed hash itself too.
func planBody(r *http.Request, auth authenticated, check bodyCheck) (*upstreamBody, error) {
	empty := r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody
	switch {
	case empty && auth.payload.IsHash() && auth.payload != sigv4.EmptySHA256:
		// A signed hash of bytes that never came: a bearer backend checks
		// no hash and would store the empty body as the signed object.
		return nil, integrity.SHA256Mismatch(string(auth.payload), sigv4.EmptySHA256)
	case auth.payload.Streaming():
		return planStreamingBody(r, auth.payload, auth.chunks, check.plain())
	case check == hashAndFraming && auth.payload == sigv4.UnsignedPayload && r.ContentLength > 0:
		// Nothing lets the backend check an unsigned body, and some S3
		// servers (versitygw) store a body cut short by a client that went
		// away: frame it, so only a body that arrived whole completes.
		n, _ := awschunked.EncodedLength(r.ContentLength, "") // no trailer: cannot fail
		return &upstreamBody{
			body:          awschunked.NewPlainEncoder(r.Body, r.ContentLength),
			contentLength: n,
			decodedLength: r.ContentLength,
			payload:       sigv4.StreamingUnsignedTrailer,
			framed:        true,
		}, nil
	case check == hashOnly && auth.payload == sigv4.UnsignedPayload && r.ContentLength > 0:
		// The client's body reader reports io.EOF only once all of
		// Content-Length arrived: a client that goes away leaves the
		// backend a short body, which a plain backend refuses.
		return &upstreamBody{
			body:          integrity.NewHoldBack(r.Body),
			contentLength: r.ContentLength,
			payload:       sigv4.UnsignedPayload,
		}, nil
	case check == nothing && auth.payload != sigv4.UnsignedPayload && !empty:
		return &upstreamBody{
			body:          integrity.NewHoldBack(integrity.NewSHA256Reader(r.Body, string(auth.payload))),
			contentLength: r.ContentLength,
			payload:       auth.payload,
		}, nil
	}
	return nil, nil
}

// planStreamingBody prepares the upstream body of an aws-chunked request.
// chain verifies chunk signatures; it is nil for unsigned chunks or when
// signature checks are skipped. plain sends the decoded bytes with the last
// one held back until the stream (chunk signatures, trailer, checksum)
// verified; otherwise they go in the proxy's own framing, with the client's
// checksum trailer for the backend to check too.
func planStreamingBody(r *http.Request, mode sigv4.PayloadMode, chain *sigv4.ChunkChain, plain bool) (*upstreamBody, error) {
	decoded, err := decodedLength(r.Header)
	if err != nil || decoded < 0 {
		return nil, s3err.New(s3err.ErrMissingContentLength)
	}
	signed := mode.SignedChunks()
	trailer := trailerName(r.Header)
	opts := awschunked.Options{Trailer: trailer, DecodedLength: decoded, SkipSignatures: signed && chain == nil,
		MinChunkSize: awschunked.MinChunkSize}
	if signed && chain != nil {
		opts.Signatures = chain
	}
	dec, err := awschunked.NewDecoder(r.Body, opts)
	if err != nil {
		return nil, err
	}
	if plain {
		return &upstreamBody{
			body:          integrity.NewHoldBack(dec),
			contentLength: decoded,
			payload:       sigv4.UnsignedPayload,
		}, nil
	}
	n, err := awschunked.EncodedLength(decoded, trailer)
	if err != nil {
		return nil, s3err.Wrapf(err, s3err.ErrInvalidRequest, "The value specified in the x-amz-trailer header is not supported.")
	}
	return &upstreamBody{
		body:          awschunked.NewEncoder(dec, decoded),
		contentLength: n,
		decodedLength: decoded,
		payload:       sigv4.StreamingUnsignedTrailer,
		framed:        true,
		trailer:       trailer,
	}, nil
}

// decodedLength is an aws-chunked body's X-Amz-Decoded-Content-Length:
// the size of the object it carries. As strconv.ParseInt has it, a number
// too large is math.MaxInt64 with an error.
func decodedLength(h http.Header) (int64, error) {
	return strconv.ParseInt(h.Get("X-Amz-Decoded-Content-Length"), 10, 64)
}

// trailerName is the checksum trailer an aws-chunked body declares
// (X-Amz-Trailer), in lower case; "" for none.
func trailerName(h http.Header) string {
	return strings.ToLower(strings.TrimSpace(h.Get("X-Amz-Trailer")))
}

// Read records the first failure so the client can be told what went
// wrong when the backend request is aborted.
func (u *upstreamBody) Read(p []byte) (int, error) {
	n, err := u.body.Read(p)
	var known *s3err.Error
	if err != nil && !errors.Is(err, io.EOF) && !errors.As(err, &known) {
		// The client's body could not be read to its end.
		err = s3err.Wrapf(err, s3err.ErrIncompleteBody, "The request body ended before its declared length.")
	}
	if err != nil && !errors.Is(err, io.EOF) {
		u.mu.Lock()
		if u.err == nil {
			u.err = err
		}
		u.mu.Unlock()
	}
	return n, err
}

// failure is the client body's first error, if any.
func (u *upstreamBody) failure() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// applyTo sets the body and its headers on the outgoing request.
func (u *upstreamBody) applyTo(out *http.Request) {
	out.Body = io.NopCloser(u) // the server closes the client's body
	out.ContentLength = u.contentLength
	out.TransferEncoding = nil
	h := out.Header
	h.Del("Content-Length")
	h.Del("X-Amz-Decoded-Content-Length")
	h.Del("X-Amz-Trailer")
	// x-amz-content-sha256 announces the framing; aws-chunked is left out
	// of Content-Encoding, which some servers (versitygw) would store as
	// the object's own encoding.
	encodings := withoutAWSChunked(h.Values("Content-Encoding"))
	h.Del("Content-Encoding")
	if len(encodings) > 0 {
		h.Set("Content-Encoding", strings.Join(encodings, ","))
	}
	for name, values := range u.setHeader {
		h[name] = values
	}
	if !u.framed {
		return
	}
	h.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(u.decodedLength, 10))
	if u.trailer != "" {
		h.Set("X-Amz-Trailer", u.trailer)
	}
}

// withoutAWSChunked drops the aws-chunked coding from Content-Encoding
// values, keeping any other (a gzip object stays gzip).
func withoutAWSChunked(values []string) []string {
	var out []string
	for _, v := range values {
		for _, coding := range strings.Split(v, ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "aws-chunked") {
				out = append(out, coding)
			}
		}
	}
	return out
}
