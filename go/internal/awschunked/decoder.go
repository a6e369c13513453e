package awschunked

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// Limits on what a client may send around its data.
const (
	maxLineLen      = 4096     // a chunk header or one trailer line
	maxTrailerBytes = 16 << 10 // all trailer lines together
	maxSizeDigits   = 16
)

// MinChunkSize is S3's smallest chunk but the last: a body of many tiny
// chunks costs a signature check and a framing line each. S3 refuses
// smaller ones with InvalidChunkSizeError, and the SDKs send 64 KiB or more.
const MinChunkSize = 8192

// MaxDecodedLength is the most data one aws-chunked body may carry: S3's
// limit for a single PUT (an object or a part), 5 GiB.
const MaxDecodedLength = 5 << 30

// ChunkVerifier checks chunk and trailer signatures; sigv4.ChunkChain is
// one. Nil means the chunks carry no signatures.
type ChunkVerifier interface {
	VerifyChunk(dataSHA256 []byte, signature string) bool
	VerifyTrailer(trailerSHA256 []byte, signature string) bool
}

// Options describe the body a Decoder expects.
type Options struct {
	// Signatures verifies chunk signatures; nil for unsigned chunks.
	Signatures ChunkVerifier
	// SkipSignatures parses signed chunks without checking them (for
	// skip_signature_validation).
	SkipSignatures bool
	// Trailer is the checksum trailer the client declared in x-amz-trailer,
	// or "" for none.
	Trailer string
	// DecodedLength is x-amz-decoded-content-length, or -1 if not given.
	DecodedLength int64
	// MinChunkSize is the smallest data chunk allowed but the last (S3's
	// is MinChunkSize); 0 allows any size.
	MinChunkSize int64
}

// Decoder turns an aws-chunked body into the object's bytes, verifying
// chunk signatures, the trailer signature and the trailer checksum as it
// goes. It returns io.EOF only once everything has been verified; any
// failure is an *s3err.Error.
type Decoder struct {
	r    *bufio.Reader
	opts Options
	// signed reports whether chunk headers carry signatures.
	signed bool

	limit     int64     // the most data bytes the body may carry
	remain    int64     // data bytes left in the current chunk
	inChunk   bool      // a chunk's data is being read (its CRLF is due)
	chunkHash hash.Hash // SHA-256 of the current chunk, for its signature
	chunkSig  string
	checksum  hash.Hash // over all data, for the trailer
	decoded   int64
	chunks    int   // data chunks started so far
	lastSize  int64 // the size of the last data chunk
	done      bool
	err       error

	trailerName, trailerValue string
}

// NewDecoder reads the aws-chunked body r.
func NewDecoder(r io.Reader, opts Options) (*Decoder, error) {
	if opts.DecodedLength > MaxDecodedLength {
		return nil, entityTooLarge()
	}
	d := &Decoder{
		r:      bufio.NewReaderSize(r, 32<<10),
		opts:   opts,
		signed: opts.Signatures != nil || opts.SkipSignatures,
		limit:  MaxDecodedLength,
	}
	if opts.DecodedLength >= 0 {
		d.limit = opts.DecodedLength
	}
	if d.opts.Signatures != nil {
		d.chunkHash = sha256.New()
	}
	if opts.Trailer != "" {
		h, ok := NewChecksum(opts.Trailer)
		if !ok {
			return nil, s3err.Newf(s3err.ErrInvalidRequest, "The value specified in the x-amz-trailer header is not supported.")
		}
		d.checksum = h
	}
	return d, nil
}

// Trailer returns the checksum trailer received, once Read returned io.EOF.
func (d *Decoder) Trailer() (name, value string) { return d.trailerName, d.trailerValue }

// Read implements io.Reader over the decoded data.
func (d *Decoder) Read(p []byte) (int, error) {
	for {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		if d.remain > 0 {
			if int64(len(p)) > d.remain {
				p = p[:d.remain]
			}
			n, err := d.r.Read(p)
			d.consume(p[:n])
			if err != nil && d.remain > 0 {
				return n, d.fail(truncated(err))
			}
			return n, nil
		}
		if err := d.advance(); err != nil {
			return 0, d.fail(err)
		}
	}
}

func (d *Decoder) consume(b []byte) {
	d.remain -= int64(len(b))
	if d.chunkHash != nil {
		d.chunkHash.Write(b)
	}
	if d.checksum != nil {
		d.checksum.Write(b)
	}
}

func (d *Decoder) fail(err error) error {
	d.err = err
	return err
}

// advance finishes the chunk just read and starts the next one, or reads
// and verifies the end of the body.
func (d *Decoder) advance() error {
	if d.inChunk {
		if err := d.expectCRLF(); err != nil {
			return err
		}
		if err := d.verifyChunk(); err != nil {
			return err
		}
		d.inChunk = false
	}
	size, sig, err := d.readChunkHeader()
	if err != nil {
		return err
	}
	d.chunkSig = sig
	if size == 0 {
		if err := d.verifyChunk(); err != nil {
			return err
		}
		if err := d.readTrailers(); err != nil {
			return err
		}
		if d.opts.DecodedLength >= 0 && d.decoded != d.opts.DecodedLength {
			return lengthMismatch()
		}
		d.done = true
		return nil
	}
	// Checked against what is left before adding: a size near the int64
	// limit would otherwise wrap the sum negative and pass, and the chunk's
	// unverified bytes would stream on to the backend.
	if size > d.limit-d.decoded {
		if d.opts.DecodedLength >= 0 {
			return d.overrun(size)
		}
		return entityTooLarge()
	}
	// Only the last data chunk may be small; it is known to have been
	// small-but-not-last once another data chunk follows it. S3 names the
	// chunk that showed it (this one) and the small one's size.
	if d.chunks > 0 && d.lastSize < d.opts.MinChunkSize {
		return s3err.New(s3err.ErrInvalidChunkSizeError).
			With("Chunk", strconv.Itoa(d.chunks+1)).With("BadChunkSize", strconv.FormatInt(d.lastSize, 10))
	}
	d.chunks++
	d.lastSize = size
	d.decoded += size
	d.remain, d.inChunk = size, true
	return nil
}

// overrun refuses a chunk longer than what is left of
// x-amz-decoded-content-length. S3 reads such a chunk before it counts it,
// so one whose data is not followed by CRLF is a broken body to S3, not a
// length mismatch; the proxy looks ahead in its buffer to say the same,
// passing none of the chunk on.
func (d *Decoder) overrun(size int64) error {
	if size > int64(d.r.Size()-2) {
		return lengthMismatch()
	}
	ahead, err := d.r.Peek(int(size) + 2)
	if err != nil {
		return truncated(err)
	}
	if !bytes.HasSuffix(ahead, []byte("\r\n")) {
		return malformed("chunk data is not followed by CRLF")
	}
	return lengthMismatch()
}

func (d *Decoder) verifyChunk() error {
	if d.opts.Signatures == nil {
		return nil
	}
	ok := d.opts.Signatures.VerifyChunk(d.chunkHash.Sum(nil), d.chunkSig)
	d.chunkHash.Reset()
	if !ok {
		return s3err.Newf(s3err.ErrSignatureDoesNotMatch, "The chunk signature we calculated does not match the signature you provided.")
	}
	return nil
}

// readChunkHeader reads "<hex size>[;chunk-signature=<sig>]\r\n".
func (d *Decoder) readChunkHeader() (size int64, sig string, err error) {
	line, err := d.readLine()
	if errors.Is(err, io.EOF) {
		return 0, "", truncated(err)
	}
	if err != nil {
		return 0, "", err
	}
	sizeText, ext, hasExt := strings.Cut(line, ";")
	if sizeText == "" || len(sizeText) > maxSizeDigits {
		return 0, "", malformed("a chunk size is missing or too long")
	}
	size, err = strconv.ParseInt(sizeText, 16, 64)
	if err != nil || size < 0 {
		return 0, "", malformed("a chunk size is not hexadecimal")
	}
	if !d.signed {
		if hasExt {
			return 0, "", malformed("unsigned chunks carry no chunk-signature")
		}
		return size, "", nil
	}
	sig, ok := strings.CutPrefix(ext, "chunk-signature=")
	if !hasExt || !ok || len(sig) != 64 {
		// A framing error, as S3 answers it; the chunk is refused either way.
		return 0, "", malformed("a chunk-signature is missing or not 64 characters")
	}
	return size, sig, nil
}

// readTrailers reads the trailer lines after the final chunk up to the
// blank line that ends the body (a body may also just end there).
func (d *Decoder) readTrailers() error {
	var canonical bytes.Buffer
	var trailerSig string
	total := 0
	for {
		line, err := d.readTrailerLine()
		if errors.Is(err, io.EOF) {
			// A declared trailer's section ends with a blank line (S3
			// refuses a body that stops short of it); without one, a body
			// ending after the final chunk is taken as before.
			if d.opts.Trailer != "" {
				return truncated(err)
			}
			break
		}
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		if strings.ContainsRune(line, '\r') {
			return malformed("a trailer line holds a bare CR")
		}
		total += len(line)
		if total > maxTrailerBytes {
			return malformedTrailer()
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return malformedTrailer()
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		// S3 takes a signed trailer as exactly the checksum, its
		// signature and the blank line; anything else in it is a broken
		// body, while a second trailer in an unsigned one is a bad trailer.
		switch {
		case trailerSig != "":
			return malformed("a line follows the trailer signature")
		case name == "x-amz-trailer-signature":
			if len(value) != 64 {
				return malformed("the trailer signature is not 64 characters")
			}
			trailerSig = value
		case d.trailerName != "" && d.signed:
			return malformed("the trailer signature does not follow the checksum")
		case d.trailerName != "":
			return malformedTrailer() // more than one trailer
		default:
			d.trailerName, d.trailerValue = name, value
			canonical.WriteString(name + ":" + value + "\n")
		}
	}
	if d.opts.Trailer != "" && d.trailerName == "" {
		return malformedTrailer() // the declared trailer was not sent
	}
	if d.opts.Signatures != nil && d.opts.Trailer != "" {
		sum := sha256.Sum256(canonical.Bytes())
		if !d.opts.Signatures.VerifyTrailer(sum[:], trailerSig) {
			return s3err.Newf(s3err.ErrSignatureDoesNotMatch, "The trailer signature we calculated does not match the signature you provided.")
		}
	}
	if d.checksum == nil {
		if d.trailerName != "" {
			return malformedTrailer() // a trailer x-amz-trailer did not declare
		}
		return nil
	}
	if d.trailerName != strings.ToLower(d.opts.Trailer) {
		return malformedTrailer() // the declared trailer was not sent
	}
	if raw, err := base64.StdEncoding.DecodeString(d.trailerValue); err != nil || len(raw) != d.checksum.Size() {
		return s3err.Newf(s3err.ErrInvalidRequest, "Value for %s trailing header is invalid.", d.trailerName)
	}
	// Constant time like every comparison with what a client sent, though
	// a checksum of the client's own bytes is no secret.
	if got := encodeChecksum(d.checksum); subtle.ConstantTimeCompare([]byte(got), []byte(d.trailerValue)) != 1 {
		return s3err.Newf(s3err.ErrBadDigest, "The %s you specified did not match the calculated checksum.", strings.ToUpper(strings.TrimPrefix(d.trailerName, "x-amz-checksum-")))
	}
	return nil
}

// rawLine reads up to and including the next LF, bounded in length. It
// returns io.EOF only when the body ends right where a line would start.
// The slice is valid until the next read.
func (d *Decoder) rawLine() ([]byte, error) {
	line, err := d.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxLineLen {
		return nil, malformed("a chunk header or trailer line is too long")
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil, io.EOF
		}
		return nil, truncated(err)
	}
	return line, nil
}

// readLine reads one CRLF-terminated line (see rawLine).
func (d *Decoder) readLine() (string, error) {
	line, err := d.rawLine()
	if err != nil {
		return "", err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", malformed("a line does not end with CRLF")
	}
	return string(line[:len(line)-2]), nil
}

// readTrailerLine reads one trailer line. Besides CRLF it takes LF CRLF as
// the end of a non-empty line: minio-go (with TrailingHeaders) writes each
// trailer as "name:value\n", the form the trailer signature covers, then
// CRLF; MinIO accepts that and minio-go reports it verified against S3. A
// bare LF not followed at once by CRLF is still refused, and the line is
// parsed and checked like any other.
func (d *Decoder) readTrailerLine() (string, error) {
	line, err := d.rawLine()
	if err != nil {
		return "", err
	}
	if len(line) >= 2 && line[len(line)-2] == '\r' {
		return string(line[:len(line)-2]), nil
	}
	text := string(line[:len(line)-1]) // a copy: Peek may reuse the buffer
	next, err := d.r.Peek(2)
	if text == "" || err != nil || next[0] != '\r' || next[1] != '\n' {
		return "", malformed("a line does not end with CRLF")
	}
	if _, err := d.r.Discard(2); err != nil {
		return "", truncated(err)
	}
	return text, nil
}

func (d *Decoder) expectCRLF() error {
	var crlf [2]byte
	if _, err := io.ReadFull(d.r, crlf[:]); err != nil {
		return truncated(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return malformed("chunk data is not followed by CRLF")
	}
	return nil
}

func entityTooLarge() error {
	return s3err.Newf(s3err.ErrEntityTooLarge, "Your proposed upload exceeds the maximum allowed size of 5 GiB.")
}

// malformed reports a body whose framing is broken. S3 answers these as a
// body that ended early; what was wrong goes to the log, not the client.
func malformed(what string) error {
	return s3err.Wrapf(fmt.Errorf("aws-chunked body: %s", what), s3err.ErrIncompleteBody, "The request body terminated unexpectedly")
}

// malformedTrailer reports a trailer section that is not the one declared
// checksum (S3's answer to each such body).
func malformedTrailer() error {
	return s3err.New(s3err.ErrMalformedTrailerError)
}

// lengthMismatch reports data longer or shorter than
// x-amz-decoded-content-length, in S3's words.
func lengthMismatch() error {
	return s3err.New(s3err.ErrIncompleteBody)
}

// truncated reports a body that ended early; a read error of the client
// connection is kept as the cause.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s3err.Newf(s3err.ErrIncompleteBody, "The request body terminated unexpectedly")
	}
	return s3err.Wrapf(fmt.Errorf("read request body: %w", err), s3err.ErrIncompleteBody, "The request body terminated unexpectedly")
}
