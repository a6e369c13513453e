package accesslog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"
)

// slogLine is the line slog's own handler for format writes for r.
func slogLine(t testing.TB, json bool, r *Record) string {
	var out bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&out, &slog.HandlerOptions{Level: Level})
	if json {
		h = slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: Level})
	}
	rec := slog.NewRecord(r.Time, Level, Message, 0)
	rec.AddAttrs(r.Attrs()...)
	if err := h.Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// sameAsSlog fails t unless both formats write r's line as slog does.
func sameAsSlog(t testing.TB, r *Record) {
	t.Helper()
	if got, want := string(AppendText(nil, r)), slogLine(t, false, r); got != want {
		t.Fatalf("text line\n got %q\nwant %q", got, want)
	}
	if got, want := string(AppendJSON(nil, r)), slogLine(t, true, r); got != want {
		t.Fatalf("JSON line\n got %q\nwant %q", got, want)
	}
}

func typical() Record {
	return Record{Time: time.Now(), RequestID: "18E2C4F1A0B3D5E7", Method: "GET", Bucket: "data",
		Operation: "GetObject", AccessKey: "AKIAEXAMPLE", Status: 200, BytesIn: 0, BytesOut: 4096,
		DurationMS: 0.412, BackendMS: 0.2, Remote: "127.0.0.1:53412"}
}

// TestSameAsSlog: lines with the values the proxy writes, and with every
// kind of value the formats treat apart, are slog's lines.
func TestSameAsSlog(t *testing.T) {
	odd := []string{"", " ", "a b", `say "hi"`, "k=v", `back\slash`, "tab\there", "new\nline", "\r", "\x00\x1f\x7f",
		"\xff", "caf\xc3", "é", "\u00a0", "\u2028\u2029", "\ufffd", "\u200b", "日本", "<&>", "emoji 🙂", "/bucket/key?x=1"}
	floats := []float64{0, math.Copysign(0, -1), 0.001, 1e-7, 5e-324, 1e-6, 0.5, 1, 12.345, 1e20, 1e21, 1.5e300, -2.25, math.MaxFloat64}
	for _, s := range odd {
		r := typical()
		r.RequestID, r.Method, r.Bucket, r.Operation, r.AccessKey, r.Remote, r.ErrorCode, r.Error = s, s, s, s, s, s, s, s
		sameAsSlog(t, &r)
	}
	for _, f := range floats {
		r := typical()
		r.DurationMS, r.BackendMS = f, -f
		sameAsSlog(t, &r)
	}
	for _, when := range []time.Time{{}, time.Unix(0, 0), time.Unix(1e9, 999999999).UTC(), time.Date(2026, 12, 6, 18, 0, 0, 1e6, time.FixedZone("", -5*3600-30*60))} {
		r := typical()
		r.Time = when
		sameAsSlog(t, &r)
	}
	r := typical()
	r.Status, r.BytesIn, r.BytesOut, r.ErrorCode, r.Error = -1, math.MinInt64, math.MaxInt64, "AccessDenied", "the validator said no"
	sameAsSlog(t, &r)
}

// FuzzSameAsSlog: for any values, both formats write slog's line.
func FuzzSameAsSlog(f *testing.F) {
	r := typical()
	f.Add(r.Time.UnixNano(), int16(60), r.RequestID, r.Method, r.Bucket, r.Operation, r.AccessKey, r.Remote, "", "",
		r.Status, r.BytesIn, r.BytesOut, r.DurationMS, r.BackendMS)
	f.Add(int64(0), int16(-330), "", " ", "a=b", `"q"`, "\xff\x00", "\u2028", "SlowDown", "ctl\x01\n",
		499, int64(-1), int64(1<<62), 1e-9, 1e22)
	f.Fuzz(func(t *testing.T, unixNano int64, zoneMinutes int16, id, method, bucket, op, key, remote, code, cause string,
		status int, in, out int64, duration, backend float64) {
		if math.IsNaN(duration) || math.IsInf(duration, 0) || math.IsNaN(backend) || math.IsInf(backend, 0) {
			t.Skip("the proxy's durations are finite; slog's JSON handler writes an error for these")
		}
		zone := time.FixedZone("", int(zoneMinutes)%(24*60)*60)
		r := Record{Time: time.Unix(0, unixNano).In(zone), RequestID: id, Method: method, Bucket: bucket, Operation: op,
			AccessKey: key, Status: status, BytesIn: in, BytesOut: out, DurationMS: duration, BackendMS: backend,
			Remote: remote, ErrorCode: code, Error: cause}
		sameAsSlog(t, &r)
	})
}

// TestWriterChoice: an answered request's line goes to the answered
// writer, a refused or failed one's to the other, each in one Write.
func TestWriterChoice(t *testing.T) {
	var answered, refused writes
	l := New("text", &answered, &refused)
	ok := typical()
	denied := typical()
	denied.ErrorCode = "AccessDenied"
	failed := typical()
	failed.Error = "backend: connection reset"
	l.Log(&ok)
	l.Log(&denied)
	l.Log(&failed)
	if len(answered) != 1 || answered[0] != string(AppendText(nil, &ok)) {
		t.Fatalf("answered writes %q", answered)
	}
	if len(refused) != 2 || refused[0] != string(AppendText(nil, &denied)) || refused[1] != string(AppendText(nil, &failed)) {
		t.Fatalf("refused writes %q", refused)
	}
	answered = nil
	New("json", &answered, &refused).Log(&ok)
	if len(answered) != 1 || answered[0] != slogLine(t, true, &ok) {
		t.Fatalf("JSON writes %q", answered)
	}
}

// writes records each Write.
type writes []string

func (w *writes) Write(p []byte) (int, error) {
	*w = append(*w, string(p))
	return len(p), nil
}

// TestLogAllocates nothing for a line (once its buffer is pooled).
func TestLogAllocates(t *testing.T) {
	r := typical()
	for _, format := range []string{"text", "json"} {
		l := New(format, io.Discard, io.Discard)
		if n := testing.AllocsPerRun(100, func() { l.Log(&r) }); n != 0 {
			t.Errorf("%s: %v allocations per line", format, n)
		}
	}
}

// BenchmarkLine: this package's line against slog's LogAttrs for the
// same record, to io.Discard.
func BenchmarkLine(b *testing.B) {
	r := typical()
	for _, format := range []string{"text", "json"} {
		b.Run(format+"/accesslog", func(b *testing.B) {
			l := New(format, io.Discard, io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				r.Time = time.Now()
				l.Log(&r)
			}
		})
		b.Run(format+"/slog", func(b *testing.B) {
			var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
			if format == "json" {
				h = slog.NewJSONHandler(io.Discard, nil)
			}
			log := slog.New(h)
			b.ReportAllocs()
			for b.Loop() {
				// As the proxy built them: an array on the stack.
				attrs := [...]slog.Attr{
					slog.String("request_id", r.RequestID), slog.String("method", r.Method), slog.String("bucket", r.Bucket),
					slog.String("operation", r.Operation), slog.String("access_key", r.AccessKey), slog.Int("status", r.Status),
					slog.Int64("bytes_in", r.BytesIn), slog.Int64("bytes_out", r.BytesOut),
					slog.Float64("duration_ms", r.DurationMS), slog.Float64("backend_ms", r.BackendMS),
					slog.String("remote", r.Remote),
				}
				log.LogAttrs(context.Background(), Level, Message, attrs[:]...)
			}
		})
	}
}
