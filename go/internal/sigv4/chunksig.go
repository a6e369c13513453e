package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// ChunkChain verifies the signature chain of an aws-chunked upload: each
// chunk's signature covers its data and the previous signature, starting
// from the seed (the request's own signature), and the trailer's signature
// ends the chain. Each string to sign is built in the chain's own buffer:
// verifying a chunk allocates nothing.
type ChunkChain struct {
	prefix   string // "\n<amzdate>\n<scope>\n"
	previous []byte // the previous signature, in hex
	mac      hash.Hash
	buf      []byte // the string to sign
	sum      [sha256.Size]byte
}

// NewChunkChain starts a chain from a verified request signature.
func (v *Verifier) NewChunkChain(secret string, c Credential, seedSignature string) *ChunkChain {
	key := v.keys.get(secret, c.Scope).key
	return &ChunkChain{
		prefix:   "\n" + c.AmzDate + "\n" + c.Scope.String() + "\n",
		previous: append(make([]byte, 0, 2*sha256.Size), seedSignature...),
		mac:      hmac.New(sha256.New, key),
	}
}

// VerifyChunk checks the signature of the next chunk, given the SHA-256 of
// its data, and advances the chain.
func (c *ChunkChain) VerifyChunk(dataSHA256 []byte, signature string) bool {
	b := c.start("AWS4-HMAC-SHA256-PAYLOAD")
	b = append(b, EmptySHA256+"\n"...)
	return c.advance(hex.AppendEncode(b, dataSHA256), signature)
}

// VerifyTrailer checks the trailer signature, given the SHA-256 of the
// canonical trailer ("name:value\n" for each trailer).
func (c *ChunkChain) VerifyTrailer(trailerSHA256 []byte, signature string) bool {
	return c.advance(hex.AppendEncode(c.start("AWS4-HMAC-SHA256-TRAILER"), trailerSHA256), signature)
}

// start begins a string to sign in c's buffer: the algorithm, the date and
// scope, and the previous signature, each on its line.
func (c *ChunkChain) start(algorithm string) []byte {
	b := append(c.buf[:0], algorithm...)
	b = append(b, c.prefix...)
	b = append(b, c.previous...)
	return append(b, '\n')
}

// advance checks signature against the HMAC of stringToSign and, if it
// matches, makes it the previous signature.
func (c *ChunkChain) advance(stringToSign []byte, signature string) bool {
	c.buf = stringToSign
	c.mac.Reset()
	c.mac.Write(stringToSign)
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], c.mac.Sum(c.sum[:0]))
	if !hmac.Equal(want[:], []byte(signature)) {
		return false
	}
	c.previous = append(c.previous[:0], want[:]...)
	return true
}
