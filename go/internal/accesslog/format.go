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

// appendRFC3339Millis writes t as slog's text handler does: RFC 3339 with
// exactly three digits of milliseconds (Go's layouts truncate fractions,
// as slog does).
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	return t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
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

// appendJSONString writes s as a JSON string the way slog's JSON handler
// escapes it (encoding/json's rules without HTML escaping): '"', '\\' and
// control characters escaped (\n, \r, \t by name, the others as \u00XX),
// invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped; the rest as it
// is.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			i++
			switch {
			case jsonSafe(c):
				b = append(b, c)
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c == '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendJSONFloat writes f as encoding/json does, which slog's JSON
// handler calls: in decimal, but in exponent form below 1e-6 and from 1e21
// on, where a negative exponent has no leading zero (1e-07 is 1e-7).
func appendJSONFloat(b []byte, f float64) []byte {
	if abs := math.Abs(f); abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'e', -1, 64)
	// strconv writes two exponent digits at least: "e-07".
	if exp := b[start:]; len(exp) >= 4 && string(exp[len(exp)-4:len(exp)-1]) == "e-0" {
		b[len(b)-2] = b[len(b)-1]
		b = b[:len(b)-1]
	}
	return b
}
