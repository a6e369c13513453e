package fieldline

import "golang.org/x/net/http/httpguts"

// ValidValue is httpguts.ValidHeaderFieldValue (no control byte but
// tab) eight bytes at a time, for the long values of signed requests
// (Authorization, User-Agent): a word with no byte below 0x20 and none
// equal to 0x7f is taken whole; any other is checked byte by byte. The
// word tests are "hasless" and "haszero" of Sean Anderson's Bit Twiddling
// Hacks: non-zero if and only if some byte is below n (for n <= 128),
// zero. h1's FuzzParseHead compares the two functions; h1 and upstream's
// differential fuzz targets, their callers.
func ValidValue(v string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; len(v) >= 8; v = v[8:] {
		w := uint64(v[0]) | uint64(v[1])<<8 | uint64(v[2])<<16 | uint64(v[3])<<24 |
			uint64(v[4])<<32 | uint64(v[5])<<40 | uint64(v[6])<<48 | uint64(v[7])<<56
		below := (w - 0x20*ones) &^ w & highs // a byte below 0x20
		del := w ^ 0x7f*ones
		isDel := (del - ones) &^ del & highs // a byte 0x7f
		if below|isDel != 0 && !httpguts.ValidHeaderFieldValue(v[:8]) {
			return false
		}
	}
	return httpguts.ValidHeaderFieldValue(v)
}
