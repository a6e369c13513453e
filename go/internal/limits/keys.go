package limits

import (
	"crypto/sha256"
	"encoding/hex"
)

// keyspace lays out the store's keys under one prefix (default "osp:"):
//
//	<prefix>use:<signature>  a presigned URL's use count
//	<prefix>req:<key>        a client key's request rate
//	<prefix>bw:<key>         a client key's bandwidth (the caller puts the direction in key)
//
// On Redis the rate keys are read and written by redis_rate, which puts its own fixed "rate:"
// in front: rate:<prefix>req:<key> and rate:<prefix>bw:<key>.
type keyspace struct{ prefix string }

func (k keyspace) use(signature string) string { return k.prefix + "use:" + bounded(signature) }
func (k keyspace) requests(key string) string  { return k.prefix + "req:" + bounded(key) }
func (k keyspace) bandwidth(key string) string { return k.prefix + "bw:" + bounded(key) }

// maxPlainKey is the longest client-supplied key kept as is: AWS access key ids are at most 128
// characters and a SigV4 signature is 64 hex digits.
const maxPlainKey = 128

// bounded keeps a client-supplied key readable when it is short and plain (an access key id, a
// hex signature) and replaces it with its SHA-256 otherwise, so no client can make the store
// hold long or odd keys. A hashed key starts with "h:", which a plain key cannot hold (':' is
// not plain), so the two never collide.
func bounded(key string) string {
	if len(key) <= maxPlainKey && plain(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "h:" + hex.EncodeToString(sum[:])
}

func plain(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '/'
		if !ok {
			return false
		}
	}
	return true
}
