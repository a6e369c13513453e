package sigv4

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// EncodePath turns an escaped request path into its S3 canonical form: each
// segment is decoded, then encoded once with the SigV4 rules. An escaped
// slash (%2F) stays escaped, because the client signed it that way.
func EncodePath(escapedPath string) (string, error) {
	if escapedPath == "" {
		return "/", nil
	}
	if unreservedOr(escapedPath, '/') {
		// Nothing to decode, nothing to encode: the path is its own
		// canonical form (as most paths are), and costs no copy.
		return escapedPath, nil
	}
	var b strings.Builder
	b.Grow(len(escapedPath) + 16)
	first := true
	for seg := range strings.SplitSeq(escapedPath, "/") {
		if !first {
			b.WriteByte('/')
		}
		first = false
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "", err
		}
		writeEncoded(&b, dec)
	}
	return b.String(), nil
}

// Encode applies the SigV4 URI encoding to one component: unreserved
// characters stay, every other byte becomes %XX with upper-case hex.
func Encode(s string) string {
	if unreservedOr(s, 0) {
		return s // encodes to itself: no copy
	}
	var b strings.Builder
	b.Grow(len(s) + 2*(len(s)-countUnreserved(s)))
	writeEncoded(&b, s)
	return b.String()
}

// unreservedOr reports whether every byte of s is unreserved or is also
// ('/' for a path, whose separators stay; 0 for no other byte): then
// SigV4 encoding leaves s as it is.
func unreservedOr(s string, also byte) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isUnreserved(c) && (c != also || also == 0) {
			return false
		}
	}
	return true
}

func countUnreserved(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isUnreserved(s[i]) {
			n++
		}
	}
	return n
}

func writeEncoded(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// CanonicalQuery encodes params and sorts them by key, then value. Params
// for which skip returns true (the presigned signature) are left out.
func CanonicalQuery(params []QueryParam, skip func(key string) bool) string {
	return string(appendCanonicalQuery(nil, params, skip))
}

// appendCanonicalQuery appends CanonicalQuery(params, skip) to b; a query
// of up to 16 parameters is sorted in an array on the stack.
func appendCanonicalQuery(b []byte, params []QueryParam, skip func(key string) bool) []byte {
	var room [16]QueryParam
	enc := room[:0]
	for _, p := range params {
		if skip != nil && skip(p.Key) {
			continue
		}
		enc = append(enc, QueryParam{Encode(p.Key), Encode(p.Value)})
	}
	// slices.SortFunc, unlike sort.Slice, boxes nothing.
	slices.SortFunc(enc, func(a, b QueryParam) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	for i, p := range enc {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.Key...)
		b = append(b, '=')
		b = append(b, p.Value...)
	}
	return b
}

// HeaderValue is the canonical value of one signed header of r: every value
// of the header joined with ',', each trimmed with inner runs of spaces
// collapsed. Go's server moves Host, Content-Length and Transfer-Encoding
// out of the header map, so they are read from where it put them.
func HeaderValue(r *http.Request, name string) (string, bool) {
	switch name {
	case "host":
		return r.Host, r.Host != ""
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v, true
		}
		if r.ContentLength >= 0 && len(r.TransferEncoding) == 0 {
			return strconv.FormatInt(r.ContentLength, 10), true
		}
		return "", false
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return strings.Join(r.TransferEncoding, ","), true
		}
	}
	// Header.Values returns the map's own slice: canonicalise into a new
	// string, so the request forwarded keeps the values as they were signed.
	values := headerValues(r.Header, name)
	if len(values) == 0 {
		return "", false
	}
	if len(values) == 1 {
		return collapseSpaces(values[0]), true
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(collapseSpaces(v))
	}
	return b.String(), true
}

// headerValues is h.Values(name) for a signed (lower-case) header name,
// found without the allocation of its canonical form when the name is made
// of lower-case letters, digits and '-' (every real one is): its canonical
// form is then simply each word capitalized, built on the stack; the map
// lookup m[string(bytes)] copies nothing.
func headerValues(h http.Header, name string) []string {
	var key [64]byte
	if len(name) > len(key) {
		return h.Values(name)
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			if upper {
				c -= 'a' - 'A'
			}
		case '0' <= c && c <= '9', c == '-':
		default:
			return h.Values(name) // Go's own rules for any other name
		}
		key[i] = c
		upper = c == '-'
	}
	return h[string(key[:len(name)])]
}

func collapseSpaces(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	return strings.Join(strings.Fields(v), " ")
}
