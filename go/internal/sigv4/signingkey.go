package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"

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
	cache *lru.Cache[signingKeyID, []byte]
}

func newSigningKeys(size int) *signingKeys {
	c, err := lru.New[signingKeyID, []byte](size)
	if err != nil { // only for size <= 0, a programming error
		panic(err)
	}
	return &signingKeys{cache: c}
}

func (k *signingKeys) get(secret string, scope Scope) []byte {
	id := signingKeyID{secret, scope}
	if key, ok := k.cache.Get(id); ok {
		return key
	}
	key := DeriveSigningKey(secret, scope)
	k.cache.Add(id, key)
	return key
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
