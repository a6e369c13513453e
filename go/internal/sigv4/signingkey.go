package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
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

// macState is an HMAC with the buffer of one signature.
type macState struct {
	mac hash.Hash
	buf []byte // the canonical request, then the string to sign
	sum [sha256.Size]byte
}

func newSigningKey(key []byte) *signingKey {
	k := &signingKey{key: key}
	k.macs.New = func() any { return &macState{mac: hmac.New(sha256.New, key)} }
	return k
}

// signature is the hex signature of r as c signed it (the query q, less
// what skipQuery leaves out, the payload hash payload): the HMAC of the
// string to sign of its canonical request. Both are built in a pooled
// buffer, so signing costs no allocation.
func (k *signingKey) signature(r *http.Request, q Query, c *Credential, payload PayloadMode, skipQuery func(string) bool) (hexSig [2 * sha256.Size]byte, err error) {
	s := k.macs.Get().(*macState)
	defer k.macs.Put(s)
	s.buf, err = appendCanonicalRequest(s.buf[:0], r, q, c.SignedHeaders, payload, skipQuery)
	if err != nil {
		return hexSig, err
	}
	digest := sha256.Sum256(s.buf)
	b := append(s.buf[:0], Algorithm+"\n"...)
	b = append(b, c.AmzDate...)
	b = append(b, '\n')
	b = c.Scope.append(b)
	b = append(b, '\n')
	b = hex.AppendEncode(b, digest[:])
	s.buf = b
	s.mac.Reset()
	s.mac.Write(b)
	hex.Encode(hexSig[:], s.mac.Sum(s.sum[:0]))
	return hexSig, nil
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
