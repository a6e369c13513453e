package fieldline

import (
	"net/textproto"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// ScanName agrees with httpguts and textproto on every name of up to
// two bytes, and on some longer ones (FuzzParseHead tries more).
func TestScanName(t *testing.T) {
	names := []string{"", "Host", "host", "X-Amz-Date", "x-amz-date", "X-AMZ-DATE", "Content-MD5", "-A", "A-", "A--B", "a b", "ÿ"}
	for a := range 256 {
		names = append(names, string([]byte{byte(a)}))
		for _, b := range []byte("aA-_ :\x00\x7f\x80") {
			names = append(names, string([]byte{byte(a), b}), string([]byte{b, byte(a)}))
		}
	}
	for _, name := range names {
		token, canonical := ScanName(name)
		if want := name != "" && httpguts.ValidHeaderFieldName(name); token != (want || name == "") {
			t.Fatalf("ScanName(%q): token %v, want %v", name, token, want)
		}
		if token && canonical != (textproto.CanonicalMIMEHeaderKey(name) == name) {
			t.Fatalf("ScanName(%q): canonical %v, CanonicalMIMEHeaderKey gives %q", name, canonical, textproto.CanonicalMIMEHeaderKey(name))
		}
	}
}
