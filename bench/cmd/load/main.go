// Command load is the benchmark's load generator: N connections, each
// sending SigV4-signed S3 requests (a fresh signature per request, client
// keys taken in turn) for a fixed duration or count, and a JSON report of
// requests/s, MB/s, latency percentiles and errors on stdout.
//
//	load -url http://127.0.0.1:8080 -op get -key size-4096 -conns 32 -duration 3s \
//	     -creds AK1:SK1,AK2:SK2
//
// Ops: get (header auth), presign (a presigned GET URL per request), put
// (a body of -size bytes), list (ListObjectsV2 of -prefix), fill (PUT
// -count objects -key%04d of -size bytes, for LIST). Bodies of put and fill
// are sent with -payload signed (x-amz-content-sha256 = the body's SHA-256)
// or trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER: aws-chunked in 64 KiB
// chunks with an x-amz-checksum-crc32 trailer, as boto3 sends by default).
// MB/s counts the object bytes, not the aws-chunked framing.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	emptySHA        = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	unsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

type report struct {
	Op        string  `json:"op"`
	Conns     int     `json:"conns"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	Seconds   float64 `json:"seconds"`
	RPS       float64 `json:"rps"`
	MBps      float64 `json:"mbps"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	P999ms    float64 `json:"p999_ms"`
	BytesRecv int64   `json:"bytes_received"`
	BytesSent int64   `json:"bytes_sent"`
}

func main() {
	base := flag.String("url", "", "endpoint, e.g. http://127.0.0.1:8080")
	bucket := flag.String("bucket", "bench", "bucket")
	op := flag.String("op", "get", "get|presign|put|list|fill")
	key := flag.String("key", "size-4096", "object key (fill: key prefix)")
	prefix := flag.String("prefix", "", "list: prefix")
	size := flag.Int64("size", 4096, "put/fill: body size in bytes")
	payloadMode := flag.String("payload", "signed", "put/fill: signed (SHA-256 of the body) or trailer (aws-chunked, crc32 trailer)")
	conns := flag.Int("conns", 1, "connections (one worker each)")
	duration := flag.Duration("duration", 3*time.Second, "run time (ignored with -count)")
	count := flag.Int64("count", 0, "total requests instead of a duration")
	credList := flag.String("creds", "", "comma-separated ACCESS:SECRET pairs, used in turn")
	region := flag.String("region", "us-east-1", "region")
	flag.Parse()

	var creds []aws.Credentials
	for _, p := range strings.Split(*credList, ",") {
		ak, sk, ok := strings.Cut(p, ":")
		if !ok {
			fmt.Fprintln(os.Stderr, "bad -creds")
			os.Exit(2)
		}
		creds = append(creds, aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk})
	}
	u, err := url.Parse(*base)
	if err != nil {
		panic(err)
	}
	if *payloadMode != "signed" && *payloadMode != "trailer" {
		fmt.Fprintln(os.Stderr, "bad -payload")
		os.Exit(2)
	}
	// body is nil for requests without one (and for empty PUTs: a non-nil
	// body of length 0 would go out chunked).
	var body *payload
	payloadHash := emptySHA
	if (*op == "put" || *op == "fill") && *size > 0 {
		body = newPayload(*size)
		payloadHash = body.sha256
		if *payloadMode == "trailer" {
			payloadHash = unsignedTrailer
		}
	}
	if *op == "fill" {
		*conns = min(*conns, 8)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        *conns * 2,
		MaxIdleConnsPerHost: *conns * 2,
		MaxConnsPerHost:     *conns,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}
	// Long enough for a 1 GiB body on the slowest path of a busy machine.
	client := &http.Client{Transport: tr, Timeout: 10 * time.Minute}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })

	var (
		issued, errs, recv, sent atomic.Int64
		firstErr                 atomic.Value
		mu                       sync.Mutex
		all                      []time.Duration
		wg                       sync.WaitGroup
	)
	ctx := context.Background()
	start := time.Now()
	deadline := start.Add(*duration)
	fail := func(e string) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, e)
	}
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			buf := make([]byte, 256<<10)
			for {
				n := issued.Add(1)
				if *count > 0 && n > *count {
					break
				}
				if *count == 0 && time.Now().After(deadline) {
					break
				}
				c := creds[int(n)%len(creds)]
				path := "/" + *bucket + "/" + *key
				method := http.MethodGet
				switch *op {
				case "put":
					method = http.MethodPut
				case "fill":
					method = http.MethodPut
					path = fmt.Sprintf("/%s/%s%04d", *bucket, *key, n-1)
				case "list":
					path = "/" + *bucket
				}
				req, _ := http.NewRequestWithContext(ctx, method, u.Scheme+"://"+u.Host+path, nil)
				if *op == "list" {
					q := url.Values{"list-type": {"2"}}
					if *prefix != "" {
						q.Set("prefix", *prefix)
					}
					req.URL.RawQuery = q.Encode()
				}
				switch {
				case body != nil && *payloadMode == "trailer":
					rd, length := body.chunked()
					req.Body, req.ContentLength = io.NopCloser(rd), length
					req.Header.Set("Content-Encoding", "aws-chunked")
					req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(body.size, 10))
					req.Header.Set("X-Amz-Trailer", trailerName)
				case body != nil:
					req.Body, req.ContentLength = io.NopCloser(body.data()), body.size
				}
				t0 := time.Now()
				if *op == "presign" {
					q := req.URL.Query()
					q.Set("X-Amz-Expires", "900")
					req.URL.RawQuery = q.Encode()
					signed, _, err := signer.PresignHTTP(ctx, c, req, "UNSIGNED-PAYLOAD", "s3", *region, t0)
					if err != nil {
						fail(err.Error())
						continue
					}
					req, _ = http.NewRequestWithContext(ctx, method, signed, nil)
				} else {
					req.Header.Set("X-Amz-Content-Sha256", payloadHash)
					if err := signer.SignHTTP(ctx, c, req, payloadHash, "s3", *region, t0); err != nil {
						fail(err.Error())
						continue
					}
				}
				resp, err := client.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				got, _ := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					fail(fmt.Sprintf("%s %s: %d", method, path, resp.StatusCode))
					continue
				}
				recv.Add(got)
				if body != nil {
					sent.Add(body.size)
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p * float64(len(all)))
		if i >= len(all) {
			i = len(all) - 1
		}
		return float64(all[i].Microseconds()) / 1000
	}
	r := report{
		Op: *op, Conns: *conns, Requests: int64(len(all)), Errors: errs.Load(), Seconds: elapsed,
		RPS: float64(len(all)) / elapsed, MBps: float64(recv.Load()+sent.Load()) / elapsed / 1e6,
		P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), P999ms: pct(0.999),
		BytesRecv: recv.Load(), BytesSent: sent.Load(),
	}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstErr = e
	}
	json.NewEncoder(os.Stdout).Encode(r)
}
