package h1

import (
	"bufio"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/object-storage-proxy/osp/internal/fieldline"
)

// writeHeader writes h's fields as h.Write does: sorted by name, a name
// that is not a token left out, every value with its CRs and LFs turned
// into spaces and without the space around it. h.Write takes a sorter
// from a pool and runs every value through a strings.Replacer; here the
// names are sorted on the stack and a value that needs no cleaning, as
// nearly all do, goes as it is. FuzzWriteHeader holds the two to the same
// bytes.
func writeHeader(bw *bufio.Writer, h http.Header) {
	var stack [16]field
	fields := stack[:0]
	for name, values := range h {
		fields = append(fields, field{name, values})
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	for _, f := range fields {
		if !httpguts.ValidHeaderFieldName(f.name) {
			continue // as h.Write does: a handler cannot be told
		}
		for _, v := range f.values {
			if !cleanValue(v) {
				v = textproto.TrimString(newlineToSpace.Replace(v))
			}
			fieldline.Write(bw, f.name, v)
		}
	}
}

// firstValue is h.Get(name) for a name in canonical form, without Get's
// work to make it so.
func firstValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

type field struct {
	name   string
	values []string
}

// newlineToSpace is net/http's replacer for field values (a Replacer is
// safe for concurrent use).
var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// cleanValue says v goes out as it is: no CR or LF, no space or tab at
// either end.
func cleanValue(v string) bool {
	if v == "" {
		return true
	}
	if first, last := v[0], v[len(v)-1]; first == ' ' || first == '\t' || last == ' ' || last == '\t' {
		return false
	}
	return strings.IndexByte(v, '\n') < 0 && strings.IndexByte(v, '\r') < 0
}
