package integrity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"io"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// SHA256Reader reads a body and, at its end, checks it against the
// x-amz-content-sha256 the client signed: io.EOF only for a body that
// matches, XAmzContentSHA256Mismatch otherwise.
type SHA256Reader struct {
	r    io.Reader
	want string
	h    hash.Hash
}

// NewSHA256Reader checks r against the lower-case hex digest want.
func NewSHA256Reader(r io.Reader, want string) *SHA256Reader {
	return &SHA256Reader{r: r, want: want, h: sha256.New()}
}

func (s *SHA256Reader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(s.h.Sum(nil)); subtle.ConstantTimeCompare([]byte(got), []byte(s.want)) != 1 {
			return n, SHA256Mismatch(s.want, got)
		}
	}
	return n, err
}

// SHA256Mismatch is S3's answer to a body whose sha256 is not the one the
// client signed: both values, as S3 gives them (the body's own hash is
// the client's to know).
func SHA256Mismatch(claimed, computed string) *s3err.Error {
	return s3err.New(s3err.ErrXAmzContentSHA256Mismatch).
		With("ClientComputedContentSHA256", claimed).
		With("S3ComputedContentSHA256", computed)
}
