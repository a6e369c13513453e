package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/object-storage-proxy/osp/internal/authz"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/s3op"
	"github.com/object-storage-proxy/osp/internal/sigv4"
	"github.com/object-storage-proxy/osp/internal/upstream"
)

const (
	clientKey, clientSecret   = "client-key", "client-secret"
	backendKey, backendSecret = "backend-key", "backend-secret"
)

// seen is what the backend received, after checking its signature the way
// an S3 server does.
type seen struct {
	method, host, escapedPath, rawQuery string
	header                              http.Header
	body                                []byte
	sigErr                              error
}

func newBackend(t *testing.T) (*httptest.Server, *atomic.Pointer[seen]) {
	var last atomic.Pointer[seen]
	verifier := sigv4.NewVerifier(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &seen{method: r.Method, host: r.Host, escapedPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, header: r.Header.Clone()}
		a, err := sigv4.ParseHeaderAuth(r)
		if err == nil {
			if a.AccessKey != backendKey {
				err = errors.New("signed with " + a.AccessKey)
			} else {
				_, err = verifier.VerifyHeaderAuth(r, queryOf(r), a, backendSecret)
			}
		}
		s.sigErr = err
		s.body, _ = io.ReadAll(r.Body)
		if err == nil && a.Payload != sigv4.UnsignedPayload {
			sum := sha256.Sum256(s.body)
			if hex.EncodeToString(sum[:]) != string(a.Payload) {
				s.sigErr = errors.New("body does not match payload hash")
			}
		}
		last.Store(s)
		if s.sigErr != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("ETag", `"abc"`)
		w.Header()["x-amz-meta-owner"] = []string{"alice"}
		_, _ = io.WriteString(w, "backend says hi")
	}))
	t.Cleanup(srv.Close)
	return srv, &last
}

func backendBucket(t *testing.T, srv *httptest.Server, style string) *config.Bucket {
	u, _ := url.Parse(srv.URL)
	host, portText, _ := net.SplitHostPort(u.Host)
	port, _ := strconv.Atoi(portText)
	return &config.Bucket{Host: host, Port: port, Region: "eu-de", Scheme: "http", AddressingStyle: style,
		AccessKey: backendKey, SecretKey: backendSecret}
}

func newTestHandler(t *testing.T, buckets map[string]*config.Bucket, validate authz.Validator) *Handler {
	transport := upstream.New(upstream.Options{ResponseHeaderTimeout: time.Minute})
	t.Cleanup(transport.Close)
	return handlerWith(buckets, validate, transport)
}

// handlerWith is a Handler with the test client key and a quiet logger.
func handlerWith(buckets map[string]*config.Bucket, validate authz.Validator, transport http.RoundTripper) *Handler {
	return New(Options{
		Buckets:       buckets,
		ClientSecrets: creds.NewClientSecrets(map[string]string{clientKey: clientSecret}, nil, 64),
		BackendCreds:  creds.NewBackendCreds(nil, false, 64),
		Authorizer:    authz.New(validate, false, 64),
		Transport:     transport,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// do sends a request signed by the client through h and returns the answer.
func do(t *testing.T, h http.Handler, method, target, body string, headers map[string]string, secret string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, "http://proxy.test:6190"+target, strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: secret}, r, hash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Headers a load balancer adds after the client signed.
	r.Header.Set("X-Forwarded-For", "10.1.2.3")
	r.Header.Set("Via", "1.1 lb")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		Code, Message, RequestId string
	}
	body, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not S3 XML: %q", body)
	}
	if e.Message == "" || e.RequestId == "" || resp.Header.Get("x-amz-request-id") != e.RequestId {
		t.Fatalf("error body lacks message or request id: %q", body)
	}
	return e.Code
}

func TestForwardsResignedPathStyle(t *testing.T) {
	srv, last := newBackend(t)
	h := newTestHandler(t, map[string]*config.Bucket{"data": backendBucket(t, srv, config.PathStyle)}, nil)
	keys := map[string]string{ // escaped in request -> escaped at the backend
		"/data/plain.txt":        "/data/plain.txt",
		"/data/a%20b%2Bc":        "/data/a%20b%2Bc",
		"/data/%E2%9C%93//x/":    "/data/%E2%9C%93//x/",
		"/data/100%25%2Fpercent": "/data/100%25%2Fpercent",
		"/data/ata/b":            "/data/ata/b",
	}
	for in, want := range keys {
		resp := do(t, h, "PUT", in+"?tagging&x-id=a+b", "hello body", map[string]string{
			"Content-Type": "text/plain", "X-Amz-Meta-Color": "blue", "Content-Md5": "XUFAKrxLKna5cZ2REBfFkg==",
		}, clientSecret)
		if resp.StatusCode != 200 {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s: status %d %s", in, resp.StatusCode, body)
		}
		s := last.Load()
		if s.sigErr != nil {
			t.Fatalf("%s: backend rejected the re-signature: %v", in, s.sigErr)
		}
		if s.escapedPath != want || s.rawQuery != "tagging=&x-id=a%20b" {
			t.Errorf("%s: backend saw %s?%s, want %s?tagging=&x-id=a%%2Bb", in, s.escapedPath, s.rawQuery, want)
		}
		if string(s.body) != "hello body" || s.header.Get("X-Amz-Meta-Color") != "blue" || s.header.Get("Content-Type") != "text/plain" ||
			s.header.Get("Content-Md5") == "" {
			t.Errorf("%s: body or end-to-end headers lost: %q %v", in, s.body, s.header)
		}
		if resp.Header["x-amz-meta-owner"] == nil {
			t.Errorf("%s: metadata names in the response were capitalised: %v", in, resp.Header)
		}
		for _, dropped := range []string{"X-Forwarded-For", "Via"} {
			if s.header.Get(dropped) != "" {
				t.Errorf("%s: %s reached the backend", in, dropped)
			}
		}
	}
}

func TestVirtualHostedBackend(t *testing.T) {
	srv, last := newBackend(t)
	b := backendBucket(t, srv, config.VirtualStyle)
	// The backend is reached by IP; the Host header names the bucket.
	transport := upstream.New(upstream.Options{ConnectTo: map[string]string{b.Endpoint(): srv.Listener.Addr().String()}})
	defer transport.Close()
	h := handlerWith(map[string]*config.Bucket{"data": b}, nil, transport)
	resp := do(t, h, "GET", "/data/k/ey", "", nil, clientSecret)
	s := last.Load()
	if resp.StatusCode != 200 || s.sigErr != nil {
		t.Fatalf("status %d, backend: %v", resp.StatusCode, s.sigErr)
	}
	if want := "data." + b.Endpoint(); s.host != want || s.escapedPath != "/k/ey" {
		t.Fatalf("backend saw host %s path %s, want %s /k/ey", s.host, s.escapedPath, want)
	}
}

func TestRejectionsNeverReachTheBackend(t *testing.T) {
	srv, last := newBackend(t)
	other := backendBucket(t, srv, config.PathStyle)
	other.AccessKey = "other-backend-key"
	buckets := map[string]*config.Bucket{
		"data":    backendBucket(t, srv, config.PathStyle),
		"denied":  backendBucket(t, srv, config.PathStyle),
		"elsewhr": other,
	}
	h := newTestHandler(t, buckets, func(ctx context.Context, a s3op.Access) (bool, error) {
		return a.Bucket != "denied", nil
	})
	cases := []struct {
		name, method, target string
		headers              map[string]string
		secret               string
		status               int
		code                 string
	}{
		{"wrong secret", "GET", "/data/k", nil, "nope", 403, "SignatureDoesNotMatch"},
		{"wrong secret with 100-continue", "PUT", "/data/k?uploadId=1&partNumber=1", map[string]string{"Expect": "100-continue"}, "nope", 403, "SignatureDoesNotMatch"},
		{"unknown bucket", "GET", "/nosuch/k", nil, clientSecret, 404, "NoSuchBucket"},
		{"validator denies", "GET", "/denied/k", nil, clientSecret, 403, "AccessDenied"},
		{"copy from denied", "PUT", "/data/k", map[string]string{"X-Amz-Copy-Source": "/denied/k"}, clientSecret, 403, "AccessDenied"},
		{"copy from unknown", "PUT", "/data/k", map[string]string{"X-Amz-Copy-Source": "nosuch/k"}, clientSecret, 404, "NoSuchBucket"},
		{"copy across credentials", "PUT", "/data/k", map[string]string{"X-Amz-Copy-Source": "elsewhr/k"}, clientSecret, 400, "InvalidRequest"},
		{"single PUT over 5 GiB", "PUT", "/data/k", map[string]string{"X-Amz-Content-Sha256": string(sigv4.StreamingUnsignedTrailer), "X-Amz-Decoded-Content-Length": "5368709121"}, clientSecret, 400, "EntityTooLarge"},
		{"aws-chunked without decoded length", "PUT", "/data/k", map[string]string{"X-Amz-Content-Sha256": string(sigv4.StreamingUnsignedTrailer)}, clientSecret, 411, "MissingContentLength"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			last.Store(nil)
			resp := do(t, h, c.method, c.target, "x", c.headers, c.secret)
			if resp.StatusCode != c.status || errorCode(t, resp) != c.code {
				t.Fatalf("got %d, want %d %s", resp.StatusCode, c.status, c.code)
			}
			if last.Load() != nil {
				t.Fatal("a rejected request reached the backend")
			}
		})
	}
}

func TestUnreachableBackendIs503(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	h := newTestHandler(t, map[string]*config.Bucket{"data": {Host: "127.0.0.1", Port: port, Scheme: "http",
		AddressingStyle: config.PathStyle, Region: "us-east-1", AccessKey: backendKey, SecretKey: backendSecret}}, nil)
	resp := do(t, h, "GET", "/data/k", "", nil, clientSecret)
	if resp.StatusCode != 503 || errorCode(t, resp) != "ServiceUnavailable" {
		t.Fatalf("got %d", resp.StatusCode)
	}
}

// TestSignsWithEachCredentialSet guards against signing with a key derived
// from an earlier secret of the same access key id.
func TestSignsWithEachCredentialSet(t *testing.T) {
	srv, last := newBackend(t)
	good := backendBucket(t, srv, config.PathStyle)
	stale := backendBucket(t, srv, config.PathStyle)
	stale.SecretKey = "rotated-away"
	h := newTestHandler(t, map[string]*config.Bucket{"good": good, "stale": stale}, nil)
	if resp := do(t, h, "GET", "/good/k", "", nil, clientSecret); resp.StatusCode != 200 {
		t.Fatalf("good: %d", resp.StatusCode)
	}
	if resp := do(t, h, "GET", "/stale/k", "", nil, clientSecret); resp.StatusCode != 403 || last.Load().sigErr == nil {
		t.Fatalf("a wrong secret for the same access key was signed with the right one: %d", resp.StatusCode)
	}
}

func TestForwardedHeadersAndURL(t *testing.T) {
	in := http.Header{
		"X-Amz-Meta-Project-Id": {"7"}, "X-Forwarded-Host": {"lb"}, "X-Forwarded-Custom": {"1"},
		"Forwarded": {"for=1.2.3.4"}, "Authorization": {"client's"}, "Content-Type": {"text/plain"},
		"Connection": {"keep-alive, X-Hop"}, "X-Hop": {"1"}, "Te": {"trailers"}, "User-Agent": {"boto3"},
	}
	out, _, err := applyRule(in, []string{"host", "x-amz-meta-project-id", "x-forwarded-host", "authorization"})
	want := http.Header{"x-amz-meta-project-id": {"7"}, "Content-Type": {"text/plain"}, "User-Agent": {"boto3"}}
	if err != nil || !reflect.DeepEqual(out, want) {
		t.Fatalf("forwarded headers: %v (%v), want %v", out, err, want)
	}
	if got := forwardedHeader(http.Header{}, nil); !reflect.DeepEqual(got["User-Agent"], []string{""}) {
		t.Fatalf("without a client User-Agent the backend must not get Go's: %q", got)
	}
	fw := &forward{target: target{bucket: "data", escapedKey: "a%20b"}, bucket: &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: config.VirtualStyle}}
	fw.query, _ = sigv4.ParseQuery("x-id=GetObject&b=1+2")
	if u, host := backendURL(fw); u.String() != "https://data.s3.example/a%20b?x-id=GetObject&b=1%202" || host != "data.s3.example" {
		t.Fatalf("virtual-hosted URL %s (Host %s)", u, host)
	}
	fw.bucket.AddressingStyle = config.PathStyle
	fw.query = sigv4.Query{}
	if u, host := backendURL(fw); u.String() != "https://s3.example/data/a%20b" || host != "s3.example" {
		t.Fatalf("path-style URL %s (Host %s)", u, host)
	}
}

func TestRequestsS3WouldRefuseAreRefusedFirst(t *testing.T) {
	srv, last := newBackend(t)
	h := newTestHandler(t, map[string]*config.Bucket{"data": backendBucket(t, srv, config.PathStyle)}, nil)
	for _, c := range []struct {
		method, target, code string
	}{
		{"GET", "//data/k", "InvalidBucketName"},
		{"GET", "/data/a/../b", "InvalidURI"},
		{"GET", "/data/a/%2e%2e/b", "InvalidURI"},
		{"PUT", "/data/./k", "InvalidURI"},
		{"GET", "/bad%20name/k", "InvalidBucketName"},
		{"PATCH", "/data/k", "MethodNotAllowed"},
	} {
		resp := do(t, h, c.method, c.target, "", nil, clientSecret)
		if got := errorCode(t, resp); got != c.code {
			t.Errorf("%s %s: %d %s, want %s", c.method, c.target, resp.StatusCode, got, c.code)
		}
	}
	if last.Load() != nil {
		t.Fatal("a refused request reached the backend")
	}
}

// queryOf is r's query, parsed as the proxy parses it once per request.
func queryOf(r *http.Request) sigv4.Query {
	q, err := sigv4.ParseQuery(r.URL.RawQuery)
	if err != nil {
		panic(err)
	}
	return q
}
