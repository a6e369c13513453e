package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/object-storage-proxy/osp/internal/accesslog"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/metrics"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// nullTransport answers every backend request at once, so the benchmark
// measures the proxy's own work: verify, authorize, rewrite, re-sign.
type nullTransport struct{}

func (nullTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r}, nil
}

// quietLog writes no access log line, as in make bench (log_level="warn"),
// so the benchmarks measure the request path, not the log.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))

// BenchmarkVerifyAndResignGET is one GET through the handler: header-auth
// verification with the client's key, then re-signing for the backend.
func BenchmarkVerifyAndResignGET(b *testing.B) { benchVerifyAndResign(b, quietLog, nil, nil) }

// BenchmarkVerifyAndResignGETRecorded is the same GET as a server with
// the default settings handles it: an access log line (log_level "info")
// and metrics.
func BenchmarkVerifyAndResignGETRecorded(b *testing.B) {
	benchVerifyAndResign(b, slog.New(slog.NewTextHandler(io.Discard, nil)), accesslog.New("text", io.Discard, io.Discard), metrics.New())
}

func benchVerifyAndResign(b *testing.B, log *slog.Logger, access *accesslog.Logger, m *metrics.Metrics) {
	bucket := &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: config.VirtualStyle,
		Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}
	h := handlerWith(map[string]*config.Bucket{"data": bucket}, nil, nullTransport{})
	h.log, h.access, h.opts.Metrics = log, access, m
	r := httptest.NewRequest("GET", "http://proxy.test:6190/data/some/object.parquet", nil)
	r.Header.Set("X-Amz-Content-Sha256", sigv4.EmptySHA256)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: clientSecret}, r, sigv4.EmptySHA256, "s3", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.Clone(r.Context()))
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, strings.TrimSpace(w.Body.String()))
		}
	}
}
