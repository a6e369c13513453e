package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// BenchmarkLoopbackGET4KiB is the whole path over loopback TCP: a keep-alive
// client sends signed 4 KiB GETs to a real http.Server running the proxy,
// which re-signs them for an in-memory backend. It is the Go-side view of
// bench/run.py's "GET 4 KiB" scenario, for profiling the proxy's CPU per
// request (client and backend costs included; compare with BenchmarkDirect).
func BenchmarkLoopbackGET4KiB(b *testing.B) {
	backend := httptest.NewServer(fourKiB())
	defer backend.Close()
	host, port := splitHostPort(b, backend.Listener.Addr())
	bucket := &config.Bucket{Host: host, Port: port, Scheme: "http", AddressingStyle: config.PathStyle,
		Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}
	transport, err := NewTransport(config.Verify{}, nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httptest.NewServer(handlerWith(map[string]*config.Bucket{"data": bucket}, nil, transport))
	defer proxy.Close()
	runLoopback(b, proxy.URL+"/data/object-4k", true)
}

// BenchmarkLoopbackDirect4KiB is the same client straight to the backend.
func BenchmarkLoopbackDirect4KiB(b *testing.B) {
	backend := httptest.NewServer(fourKiB())
	defer backend.Close()
	runLoopback(b, backend.URL+"/data/object-4k", false)
}

func fourKiB() http.Handler {
	body := []byte(strings.Repeat("x", 4096))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4096")
		w.Write(body)
	})
}

func splitHostPort(b *testing.B, addr net.Addr) (string, int) {
	tcp := addr.(*net.TCPAddr)
	return tcp.IP.String(), tcp.Port
}

func runLoopback(b *testing.B, url string, sign bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Amz-Content-Sha256", sigv4.EmptySHA256)
	if sign {
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: clientSecret}, req, sigv4.EmptySHA256, "s3", "us-east-1", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	cpuBefore := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Do(req.Clone(context.Background()))
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n != 4096 {
				b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
			}
		}
	})
	b.ReportMetric(float64((processCPU()-cpuBefore).Microseconds())/float64(b.N), "cpu-us/op")
}

// processCPU is the CPU time the process has used, user and system: the
// cost of a request whatever the cores' contention.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
