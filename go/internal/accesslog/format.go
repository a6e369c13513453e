package accesslog

import (
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// The two formats follow log/slog's commonHandler.handle, TextHandler
// and JSONHandler (Go 1.26, GOROOT/src/log/slog): the built-in time,
// level and msg, then the attributes, separated by a space (text) or a
// comma (JSON), and a newline. The keys are constants that need no
// quoting or escaping in either format, so they are written as they are.

// AppendText appends r's line as slog.TextHandler writes it.
func AppendText(b []byte, r *Record) []byte {
	if !r.Time.IsZero() {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, r.Time.Round(0))
		b = append(b, ' ')
	}
	b = append(b, "level=INFO msg="+Message...)
	b = appendTextString(append(b, " request_id="...), r.RequestID)
	b = appendTextString(append(b, " method="...), r.Method)
	b = appendTextString(append(b, " bucket="...), r.Bucket)
	b = appendTextString(append(b, " operation="...), r.Operation)
	b = appendTextString(append(b, " access_key="...), r.AccessKey)
	b = strconv.AppendInt(append(b, " status="...), int64(r.Status), 10)
	b = strconv.AppendInt(append(b, " bytes_in="...), r.BytesIn, 10)
	b = strconv.AppendInt(append(b, " bytes_out="...), r.BytesOut, 10)
	b = strconv.AppendFloat(append(b, " duration_ms="...), r.DurationMS, 'g', -1, 64)
	b = strconv.AppendFloat(append(b, " backend_ms="...), r.BackendMS, 'g', -1, 64)
	b = appendTextString(append(b, " remote="...), r.Remote)
	if r.ErrorCode != "" {
		b = appendTextString(append(b, " error_code="...), r.ErrorCode)
	}
	if r.Error != "" {
		b = appendTextString(append(b, " error="...), r.Error)
	}
	return append(b, '\n')
}

// AppendJSON appends r's line as slog.JSONHandler writes it.
func AppendJSON(b []byte, r *Record) []byte {
	b = append(b, '{')
	if !r.Time.IsZero() {
		// slog writes an error before a year outside [0,9999]; time.Now
		// gives none.
		b = append(b, `"time":"`...)
		b = r.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":"INFO","msg":"`+Message+`"`...)
	b = appendJSONString(append(b, `,"request_id":`...), r.RequestID)
	b = appendJSONString(append(b, `,"method":`...), r.Method)
	b = appendJSONString(append(b, `,"bucket":`...), r.Bucket)
	b = appendJSONString(append(b, `,"operation":`...), r.Operation)
	b = appendJSONString(append(b, `,"access_key":`...), r.AccessKey)
	b = strconv.AppendInt(append(b, `,"status":`...), int64(r.Status), 10)
	b = strconv.AppendInt(append(b, `,"bytes_in":`...), r.BytesIn, 10)
	b = strconv.AppendInt(append(b, `,"bytes_out":`...), r.BytesOut, 10)
	b = appendJSONFloat(append(b, `,"duration_ms":`...), r.DurationMS)
	b = appendJSONFloat(append(b, `,"backend_ms":`...), r.BackendMS)
	b = appendJSONString(append(b, `,"remote":`...), r.Remote)
	if r.ErrorCode != "" {
		b = appendJSONString(append(b, `,"error_code":`...), r.ErrorCode)
	}
	if r.Error != "" {
		b = appendJSONString(append(b, `,"error":`...), r.Error)
	}
	return append(b, "}\n"...)
}

// appendRFC3339Millis is slog's (handler.go): RFC 3339 with exactly three
// digits of milliseconds, truncated.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	// Format according to time.RFC3339Nano since it is highly optimized,
	// but truncate it to use millisecond resolution.
	// Unfortunately, that format trims trailing 0s, so add 1/10 millisecond
	// to guarantee that there are exactly 4 digits after the period.
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
	return b
}

// appendTextString is slog's text handleState.appendString: s as it is,
// or Go-quoted when it needs quoting.
func appendTextString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting is slog's (text_handler.go): empty, or holding a space,
// '=', a character JSON would escape other than '\\', invalid UTF-8, or a
// Unicode space or non-printing rune.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b != '\\' && (b == ' ' || b == '=' || !jsonSafe(b)) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// jsonSafe is slog's safeSet (from encoding/json): an ASCII byte that
// stands in a JSON string as it is: all but the control characters
// (0-31), '"' and '\\'. (DEL, 127, is safe.)
func jsonSafe(b byte) bool { return b >= 0x20 && b != '"' && b != '\\' }

// appendJSONString is s quoted as slog's appendEscapedJSONString escapes
// it (encoding/json without HTML escaping): invalid UTF-8 becomes
// \ufffd, and U+2028 and U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe(c) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), `\u202`...)
			b = append(b, hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONFloat is f as encoding/json's floatEncoder writes a float64
// (which slog's JSON handler calls): like strconv's 'f', but 'e' below
// 1e-6 and from 1e21 on, with the exponent's leading zero dropped.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
