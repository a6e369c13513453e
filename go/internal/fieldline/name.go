package fieldline

import "golang.org/x/net/http/httpguts"

// A field name's byte falls in one of these classes, which ScanName looks
// up once per byte: whether it may be in a name at all (a token byte),
// and whether it is a letter of either case or a dash, which canonical
// form constrains.
const (
	notToken  uint8 = 0
	tokenByte uint8 = 1 << iota // a token byte that is not a letter or '-'
	lowerByte
	upperByte
	dashByte // '-', after which a letter is upper case
)

// nameBytes is the class of each byte, built from httpguts.IsTokenRune so
// that the two cannot disagree (TestNameBytes); it is never changed.
var nameBytes = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case !httpguts.IsTokenRune(rune(c)):
			t[c] = notToken
		case 'a' <= c && c <= 'z':
			t[c] = lowerByte
		case 'A' <= c && c <= 'Z':
			t[c] = upperByte
		case c == '-':
			t[c] = dashByte
		default:
			t[c] = tokenByte
		}
	}
	return t
}()

// ScanName says whether name is a token, and whether it is in canonical
// form (textproto.CanonicalMIMEHeaderKey's): upper case at the start and
// after each '-', lower case elsewhere. One pass and one table lookup a
// byte, where ValidHeaderFieldName and CanonicalMIMEHeaderKey would each
// make a pass. The empty name is neither here nor there: callers refuse
// it first.
func ScanName(name string) (token, canonical bool) {
	var wrongCase uint8
	misplaced := lowerByte // the class a letter here must not have
	for i := range len(name) {
		class := nameBytes[name[i]]
		if class == notToken {
			return false, false
		}
		wrongCase |= class & misplaced
		misplaced = upperByte
		if class == dashByte {
			misplaced = lowerByte
		}
	}
	return true, wrongCase == 0
}
