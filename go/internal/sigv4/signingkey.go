package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// signingKeyID names one derived key. A key is valid for one day, region
// and service, so a small LRU covers every active client.
type signingKeyID struct {
	secret string
	scope  Scope
}

// signingKeys caches derived signing keys: deriving one costs four HMACs,
// more than verifying the signature itself.
type signingKeys struct {
	cache *lru.Cache[signingKeyID, *signingKey]
}

func newSigningKeys(size int) *signingKeys {
	c, err := lru.New[signingKeyID, *signingKey](size)
	if err != nil { // only for size <= 0, a programming error
		panic(err)
	}
	return &signingKeys{cache: c}
}

func (k *signingKeys) get(secret string, scope Scope) *signingKey {
	id := signingKeyID{secret, scope}
	if key, ok := k.cache.Get(id); ok {
		return key
	}
	key := newSigningKey(DeriveSigningKey(secret, scope))
	k.cache.Add(id, key)
	return key
}

// signingKey is a derived key with HMACs keyed by it, kept for reuse:
// keying an HMAC costs allocations and two block hashes per request.
type signingKey struct {
	key  []byte
	macs sync.Pool // of *macState
}

// macState is an HMAC with the buffers of one signature.
type macState struct {
	mac hash.Hash
	buf []byte // the string to sign
	sum [sha256.Size]byte
}

func newSigningKey(key []byte) *signingKey {
	k := &signingKey{key: key}
	k.macs.New = func() any { return &macState{mac: hmac.New(sha256.New, key)} }
	return k
}

// signature is the hex HMAC of the string to sign of a canonical request.
func (k *signingKey) signature(amzDate string, scope Scope, canonical string) (hexSig [2 * sha256.Size]byte) {
	s := k.macs.Get().(*macState)
	defer k.macs.Put(s)
	// Hashed from the pooled buffer: []byte(canonical) would be a copy
	// on the heap.
	s.buf = append(s.buf[:0], canonical...)
	digest := sha256.Sum256(s.buf)
	b := append(s.buf[:0], Algorithm+"\n"...)
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = scope.append(b)
	b = append(b, '\n')
	b = hex.AppendEncode(b, digest[:])
	s.buf = b
	s.mac.Reset()
	s.mac.Write(b)
	hex.Encode(hexSig[:], s.mac.Sum(s.sum[:0]))
	return hexSig
}

// DeriveSigningKey computes HMAC chain AWS4+secret -> date -> region ->
// service -> aws4_request.
func DeriveSigningKey(secret string, scope Scope) []byte {
	key := hmacSHA256([]byte("AWS4"+secret), scope.Date)
	key = hmacSHA256(key, scope.Region)
	key = hmacSHA256(key, scope.Service)
	return hmacSHA256(key, scopeTerminator)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
