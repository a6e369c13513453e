// Package fieldline writes HTTP/1.1 header field lines, for the heads
// h1 (responses) and upstream (requests) write themselves.
package fieldline

import "bufio"

// Write writes the field line "name: value\r\n". When it fits the
// writer's free space it is appended there and written at once: one copy,
// where four WriteStrings each pay a call and a check of the space.
func Write(w *bufio.Writer, name, value string) {
	if w.Available() < len(name)+len(": \r\n")+len(value) {
		w.WriteString(name)
		w.WriteString(": ")
		w.WriteString(value)
		w.WriteString("\r\n")
		return
	}
	line := append(w.AvailableBuffer(), name...)
	line = append(line, ": "...)
	line = append(line, value...)
	w.Write(append(line, "\r\n"...))
}
