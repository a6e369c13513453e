// Package awschunked reads and writes the aws-chunked body encoding of S3
// streaming uploads: chunk framing, per-chunk signatures, and the trailing
// checksum, verified while the body streams through.
package awschunked

import (
	"crypto/sha1" //nolint:gosec // S3's x-amz-checksum-sha1 is SHA-1 by definition
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"
)

// crc64NVMETable is CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5,
// init and final xor all ones, which is how hash/crc64 works).
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// checksums maps each trailer S3 accepts to its hash.
var checksums = map[string]func() hash.Hash{
	"x-amz-checksum-crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"x-amz-checksum-crc32c":    func() hash.Hash { return crc32.New(castagnoliTable) },
	"x-amz-checksum-crc64nvme": func() hash.Hash { return crc64.New(crc64NVMETable) },
	"x-amz-checksum-sha1":      sha1.New,
	"x-amz-checksum-sha256":    sha256.New,
}

// NewChecksum returns the hash of a checksum trailer name such as
// "x-amz-checksum-crc32", or false for a name S3 does not know.
func NewChecksum(trailer string) (hash.Hash, bool) {
	newHash, ok := checksums[strings.ToLower(trailer)]
	if !ok {
		return nil, false
	}
	return newHash(), true
}

// encodedChecksumLen is the length of a checksum's base64 value.
func encodedChecksumLen(h hash.Hash) int { return base64.StdEncoding.EncodedLen(h.Size()) }

func encodeChecksum(h hash.Hash) string { return base64.StdEncoding.EncodeToString(h.Sum(nil)) }
