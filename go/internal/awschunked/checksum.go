// Package awschunked reads and writes the aws-chunked body encoding of S3
// streaming uploads: chunk framing, per-chunk signatures, and the trailing
// checksum, verified while the body streams through.
package awschunked

import (
	"crypto/md5"  //nolint:gosec // S3's x-amz-checksum-md5 is MD5 by definition
	"crypto/sha1" //nolint:gosec // S3's x-amz-checksum-sha1 is SHA-1 by definition
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"
)

// crc64NVMETable is CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5,
// init and final xor all ones, which is how hash/crc64 works).
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// checksums maps each trailer S3 accepts to its hash. The value is the
// base64 of the hash's Sum, big-endian for the integer ones (as S3 and
// versitygw write them). S3 added sha512, md5 and the xxhash family in
// 2025; SDKs send them as trailers like the others.
var checksums = map[string]func() hash.Hash{
	"x-amz-checksum-crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"x-amz-checksum-crc32c":    func() hash.Hash { return crc32.New(castagnoliTable) },
	"x-amz-checksum-crc64nvme": func() hash.Hash { return crc64.New(crc64NVMETable) },
	"x-amz-checksum-sha1":      sha1.New,
	"x-amz-checksum-sha256":    sha256.New,
	"x-amz-checksum-sha512":    sha512.New,
	"x-amz-checksum-md5":       md5.New,
	"x-amz-checksum-xxhash64":  func() hash.Hash { return xxhash.New() },
	"x-amz-checksum-xxhash3":   func() hash.Hash { return xxh3.New() },
	"x-amz-checksum-xxhash128": func() hash.Hash { return xxh3.New128() },
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
