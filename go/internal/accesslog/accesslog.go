// Package accesslog writes the proxy's access line: one per request.
//
// Every other log line goes through log/slog. This one does not, because
// it is written for every request: through slog.Logger.LogAttrs its
// eleven to thirteen attributes cost a Record, an overflow slice, the
// handler's generic formatting of each value and its buffer, a few
// microseconds of a small request's CPU. Here the line is written
// straight into a pooled buffer instead, byte for byte what
// slog.NewTextHandler or slog.NewJSONHandler (without options other than
// the level) writes for the same Record (Record.Attrs, at the same time):
// the logs' readers see no difference. What pins the two formats to
// slog's is the differential test and FuzzSameAsSlog, which compare whole
// lines with slog's own handlers.
package accesslog

import (
	"io"
	"log/slog"
	"sync"
	"time"
)

// Record is what one request's line says.
type Record struct {
	Time       time.Time // when the request ended; the line's time
	RequestID  string
	Method     string
	Bucket     string
	Operation  string
	AccessKey  string
	Status     int
	BytesIn    int64
	BytesOut   int64
	DurationMS float64 // finite: slog's JSON handler writes an error for NaN or ±Inf
	BackendMS  float64
	Remote     string
	ErrorCode  string // the S3 error the proxy answered with; left out when ""
	Error      string // why, for the log; left out when ""
}

// Message is the line's msg, and Level its level.
const (
	Message = "request"
	Level   = slog.LevelInfo
)

// Refused reports whether the proxy refused the request or failed it: its
// line goes out at once, with the warnings.
func (r *Record) Refused() bool { return r.ErrorCode != "" || r.Error != "" }

// Attrs are the line's attributes in slog's terms, in the line's order:
// for a logger that is only a slog.Logger, and what the tests compare
// this package's lines with.
func (r *Record) Attrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("request_id", r.RequestID), slog.String("method", r.Method), slog.String("bucket", r.Bucket),
		slog.String("operation", r.Operation), slog.String("access_key", r.AccessKey), slog.Int("status", r.Status),
		slog.Int64("bytes_in", r.BytesIn), slog.Int64("bytes_out", r.BytesOut),
		slog.Float64("duration_ms", r.DurationMS), slog.Float64("backend_ms", r.BackendMS),
		slog.String("remote", r.Remote),
	}
	if r.ErrorCode != "" {
		attrs = append(attrs, slog.String("error_code", r.ErrorCode))
	}
	if r.Error != "" {
		attrs = append(attrs, slog.String("error", r.Error))
	}
	return attrs
}

// Logger writes access lines in one format, each in one Write: an
// answered request's to one writer (which may batch them), a refused
// one's to another (which sends them at once). Its methods may be called
// concurrently; its writes are serialized, as a slog handler's are.
type Logger struct {
	json     bool
	answered io.Writer
	refused  io.Writer
	mu       sync.Mutex
}

// New returns a Logger writing format ("json", or else "text", as
// config.Parse checks it) to answered or refused.
func New(format string, answered, refused io.Writer) *Logger {
	return &Logger{json: format == "json", answered: answered, refused: refused}
}

// lineBuffers hold lines while they are written. A line is about 250
// bytes; a longer one (a long error) grows its buffer, which is put back
// only if it stayed small.
var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledLine = 4 << 10

// Log writes r's line. The error of the write is not reported: a logger
// has no one to report it to.
func (l *Logger) Log(r *Record) {
	bp := lineBuffers.Get().(*[]byte)
	line := (*bp)[:0]
	if l.json {
		line = AppendJSON(line, r)
	} else {
		line = AppendText(line, r)
	}
	out := l.answered
	if r.Refused() {
		out = l.refused
	}
	l.mu.Lock()
	_, _ = out.Write(line)
	l.mu.Unlock()
	if cap(line) <= maxPooledLine {
		*bp = line
		lineBuffers.Put(bp)
	}
}
