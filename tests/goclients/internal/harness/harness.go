// Package harness is what the two client programs share: reading the
// parameters pytest passes, an HTTP transport that records what each SDK
// sends (so the tests can assert the signing mode and checksums the SDK
// chose by default), and writing the one JSON result line.
package harness

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
)

// Params are the fields of the JSON object in argv[1]. Each operation uses
// the ones it needs.
type Params struct {
	Endpoint    string            `json:"endpoint"`
	AccessKey   string            `json:"access_key"`
	SecretKey   string            `json:"secret_key"`
	Region      string            `json:"region"`
	CA          string            `json:"ca"`
	Op          string            `json:"op"`
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	File        string            `json:"file"`
	Out         string            `json:"out"`
	Range       string            `json:"range"` // "bytes=a-b"
	RangeStart  int64             `json:"range_start"`
	RangeEnd    int64             `json:"range_end"`
	Metadata    map[string]string `json:"metadata"`
	ContentType string            `json:"content_type"`
	Keys        []string          `json:"keys"`
	Prefix      string            `json:"prefix"`
	PageSize    int32             `json:"page_size"`
	SrcKey      string            `json:"src_key"`
	DstKey      string            `json:"dst_key"`
	Via         string            `json:"via"`
	// Disposition, for presign_get: response-content-disposition.
	Disposition string `json:"disposition"`
	// TrailingHeaders turns on minio-go's option of that name (off by
	// default); with ChecksumCRC32C, uploads then carry a CRC32C trailer.
	TrailingHeaders bool `json:"trailing_headers"`
	// ChecksumCRC32C sets minio-go's PutObjectOptions.Checksum to CRC32C.
	ChecksumCRC32C bool `json:"checksum_crc32c"`
	// TamperAt > 0 flips one bit of the byte at this offset of every PUT
	// body on the wire, after the SDK signed it: a man in the middle.
	TamperAt int64 `json:"tamper_at"`
}

// ReadParams parses argv[1].
func ReadParams() (Params, error) {
	var p Params
	if len(os.Args) != 2 {
		return p, fmt.Errorf("usage: %s '{json params}'", os.Args[0])
	}
	if err := json.Unmarshal([]byte(os.Args[1]), &p); err != nil {
		return p, fmt.Errorf("parsing params: %w", err)
	}
	if p.Region == "" {
		p.Region = "us-east-1"
	}
	return p, nil
}

// Sent is what the recorder keeps of one request: the headers that show
// how the SDK framed and signed it.
type Sent struct {
	Method          string            `json:"method"`
	Path            string            `json:"path"`
	Query           string            `json:"query"`
	ContentLength   int64             `json:"content_length"`
	ContentSHA256   string            `json:"content_sha256"`
	ContentEncoding string            `json:"content_encoding"`
	ContentType     string            `json:"content_type"`
	Trailer         string            `json:"trailer"`
	DecodedLength   string            `json:"decoded_length"`
	Checksums       map[string]string `json:"checksums"`
	SignedHeaders   string            `json:"signed_headers"`
	// Unsigned: the names of the headers sent but not signed (besides
	// Authorization), which the proxy's forwarding rule may drop.
	Unsigned []string `json:"unsigned"`
	Status   int      `json:"status"`
}

// Recorder is an http.RoundTripper that records each request before
// passing it on.
type Recorder struct {
	next     http.RoundTripper
	tamperAt int64
	mu       sync.Mutex
	sent     []Sent
}

// NewRecorder wraps a clone of http.DefaultTransport that trusts the CA
// bundle p.CA (if any) besides the system roots, and tampers with PUT
// bodies if p.TamperAt says so.
func NewRecorder(p Params) (*Recorder, error) {
	caPath := p.CA
	base := http.DefaultTransport.(*http.Transport).Clone()
	if caPath != "" {
		pem, err := os.ReadFile(caPath)
		if err != nil {
			return nil, fmt.Errorf("reading CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", caPath)
		}
		base.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Recorder{next: base, tamperAt: p.TamperAt}, nil
}

// RoundTrip records req and sends it.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := Sent{
		Method:          req.Method,
		Path:            req.URL.EscapedPath(),
		Query:           req.URL.RawQuery,
		ContentLength:   req.ContentLength,
		ContentSHA256:   req.Header.Get("X-Amz-Content-Sha256"),
		ContentEncoding: req.Header.Get("Content-Encoding"),
		ContentType:     req.Header.Get("Content-Type"),
		Trailer:         req.Header.Get("X-Amz-Trailer"),
		DecodedLength:   req.Header.Get("X-Amz-Decoded-Content-Length"),
		Checksums:       map[string]string{},
	}
	for name, values := range req.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-checksum-") || lower == "content-md5" || lower == "x-amz-sdk-checksum-algorithm" {
			s.Checksums[lower] = strings.Join(values, ",")
		}
	}
	if auth := req.Header.Get("Authorization"); auth != "" {
		if _, after, ok := strings.Cut(auth, "SignedHeaders="); ok {
			s.SignedHeaders, _, _ = strings.Cut(after, ",")
		}
	}
	if r.tamperAt > 0 && req.Method == http.MethodPut && req.Body != nil {
		req = req.Clone(req.Context())
		req.Body = &tamperer{body: req.Body, at: r.tamperAt}
		req.GetBody = nil // a transport-level retry must not resend it untouched
	}
	signed := map[string]bool{"authorization": true}
	for _, name := range strings.Split(s.SignedHeaders, ";") {
		signed[name] = true
	}
	s.Unsigned = []string{}
	for name := range req.Header {
		if lower := strings.ToLower(name); !signed[lower] {
			s.Unsigned = append(s.Unsigned, lower)
		}
	}
	sort.Strings(s.Unsigned)
	resp, err := r.next.RoundTrip(req)
	if resp != nil {
		s.Status = resp.StatusCode
	}
	r.mu.Lock()
	r.sent = append(r.sent, s)
	r.mu.Unlock()
	return resp, err
}

// Sent returns a copy of what was recorded so far.
func (r *Recorder) Sent() []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sent(nil), r.sent...)
}

// tamperer flips the lowest bit of the byte at offset at.
type tamperer struct {
	body io.ReadCloser
	at   int64
	read int64
}

func (t *tamperer) Read(p []byte) (int, error) {
	n, err := t.body.Read(p)
	if start := t.read; t.at >= start && t.at < start+int64(n) {
		p[t.at-start] ^= 1
	}
	t.read += int64(n)
	return n, err
}

func (t *tamperer) Close() error { return t.body.Close() }

// Error is an S3 error as the SDK reported it.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Text    string `json:"text"`
}

// Emit writes the result line: result's fields, "ok", "error" (nil on
// success), what was sent, and the SDK's version. Exit code 0 either way:
// an S3 error is a result the test asserts on; only a harness failure
// exits non-zero.
func Emit(result map[string]any, e *Error, rec *Recorder, sdk string) {
	if result == nil {
		result = map[string]any{}
	}
	result["ok"] = e == nil
	result["error"] = e
	result["sdk"] = sdk
	if rec != nil {
		result["sent"] = rec.Sent()
	}
	line, err := json.Marshal(result)
	if err != nil {
		Fail(fmt.Errorf("encoding result: %w", err))
	}
	fmt.Printf("OSP-RESULT %s\n", line)
}

// Fail reports a harness failure (not an S3 error) and exits 2.
func Fail(err error) {
	fmt.Fprintf(os.Stderr, "harness: %v\n", err)
	os.Exit(2)
}

// HideLength wraps a file so that nothing can learn its size: no Seek, no
// ReadAt, no Stat, like a pipe or a network stream.
func HideLength(r io.Reader) io.Reader {
	return struct{ io.Reader }{r}
}

// WriteFile writes body to path and returns its size.
func WriteFile(path string, body io.Reader) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", path, err)
	}
	n, err := io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", path, err)
	}
	return n, nil
}

// ModuleVersions returns "path@version" of each named module this binary
// was built with (for the compatibility table).
func ModuleVersions(paths ...string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	var found []string
	for _, dep := range info.Deps {
		if want[dep.Path] {
			found = append(found, dep.Path+"@"+dep.Version)
		}
	}
	return strings.Join(found, " ")
}
