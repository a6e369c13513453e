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
// ends the chain.
type ChunkChain struct {
	prefix   string // "\n<amzdate>\n<scope>\n"
	previous string
	mac      hash.Hash
}

// NewChunkChain starts a chain from a verified request signature.
func (v *Verifier) NewChunkChain(secret string, c Credential, seedSignature string) *ChunkChain {
	key := v.keys.get(secret, c.Scope).key
	return &ChunkChain{
		prefix:   "\n" + c.AmzDate + "\n" + c.Scope.String() + "\n",
		previous: seedSignature,
		mac:      hmac.New(sha256.New, key),
	}
}

// VerifyChunk checks the signature of the next chunk, given the SHA-256 of
// its data, and advances the chain.
func (c *ChunkChain) VerifyChunk(dataSHA256 []byte, signature string) bool {
	return c.advance("AWS4-HMAC-SHA256-PAYLOAD", EmptySHA256+"\n"+hex.EncodeToString(dataSHA256), signature)
}

// VerifyTrailer checks the trailer signature, given the SHA-256 of the
// canonical trailer ("name:value\n" for each trailer).
func (c *ChunkChain) VerifyTrailer(trailerSHA256 []byte, signature string) bool {
	return c.advance("AWS4-HMAC-SHA256-TRAILER", hex.EncodeToString(trailerSHA256), signature)
}

func (c *ChunkChain) advance(algorithm, tail, signature string) bool {
	c.mac.Reset()
	c.mac.Write([]byte(algorithm))
	c.mac.Write([]byte(c.prefix))
	c.mac.Write([]byte(c.previous))
	c.mac.Write([]byte{'\n'})
	c.mac.Write([]byte(tail))
	want := hex.EncodeToString(c.mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return false
	}
	c.previous = want
	return true
}
