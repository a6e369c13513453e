package sigv4

// PayloadMode is what a request's x-amz-content-sha256 says of its body:
// the SHA-256 of the body, or one of the named modes below (the body is
// unsigned, or aws-chunked with or without chunk signatures). It is read
// once, when the request's authentication is parsed; everything after asks
// it rather than comparing strings.
type PayloadMode string

// The named payload modes the proxy takes. SigV4a's
// STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER] are S3's, not the
// proxy's: they are not Valid.
const (
	UnsignedPayload          PayloadMode = "UNSIGNED-PAYLOAD"
	StreamingPayload         PayloadMode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer  PayloadMode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrailer PayloadMode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// EmptySHA256 is the SHA-256 of an empty body.
const EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Valid reports whether the proxy takes m: a named mode, or a SHA-256 in
// lower-case hex.
func (m PayloadMode) Valid() bool {
	switch m {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return true
	}
	return isLowerHex(string(m), 64)
}

// Streaming reports whether the body is aws-chunked.
func (m PayloadMode) Streaming() bool {
	switch m {
	case StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return true
	}
	return false
}

// SignedChunks reports whether the body is aws-chunked with a signature
// on each chunk (and on the trailer, if any), chained from the request's.
func (m PayloadMode) SignedChunks() bool {
	return m == StreamingPayload || m == StreamingPayloadTrailer
}

// IsHash reports whether m is a SHA-256 of the body rather than a named
// mode (for a Valid m).
func (m PayloadMode) IsHash() bool {
	return m != UnsignedPayload && !m.Streaming()
}
