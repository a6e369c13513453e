package fieldline

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// A line is written whole, whether it fits the writer's free space or not.
func TestWrite(t *testing.T) {
	for _, value := range []string{"", "v", strings.Repeat("x", 100)} {
		var out bytes.Buffer
		w := bufio.NewWriterSize(&out, 16)
		w.WriteString("0123456789") // leaves less free space than a long line needs
		Write(w, "Name", value)
		Write(w, "Other", "o")
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if want := "0123456789Name: " + value + "\r\nOther: o\r\n"; out.String() != want {
			t.Fatalf("wrote %q, want %q", out.String(), want)
		}
	}
}
