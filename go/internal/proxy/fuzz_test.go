package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// FuzzRoute feeds arbitrary Host headers, request targets and proxy
// domains to the router. It must never panic; it refuses only with
// InvalidURI or InvalidBucketName; it routes no invalid bucket name and no
// key with a dot segment; and what it routes must be exactly what the client signed:
// the canonical URI the signature verifier computes from the same request
// is "/" + bucket + "/" + key (path style) or "/" + key (virtual-hosted),
// so no bucket or key other than the signed one can be reached. The key it
// hands on is in canonical form (a fixed point of sigv4.EncodePath) and
// unescapes cleanly, as the handler relies on.
func FuzzRoute(f *testing.F) {
	f.Add("127.0.0.1:8080", "/bucket/key", "")
	f.Add("bucket.s3.example.com", "/dir/file.txt?versionId=1", "s3.example.com")
	f.Add("BUCKET.S3.Example.com:443", "/a%2Fb/c%20d", "s3.example.com")
	f.Add("s3.example.com", "//bucket/key", "s3.example.com")
	f.Add("h", "/bucket/./key", "")
	f.Add("h", "/bucket/%2e%2e/other", "")
	f.Add("h", "/a%2Fb/k", "")
	f.Add("h", "/bucket/%zz", "")
	f.Add(".s3.example.com", "/", "s3.example.com")
	f.Add("[::1]:9000", "/b/k?", "")
	f.Fuzz(func(t *testing.T, host, target, domain string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // Go's server answers 400 before any handler runs
		}
		var domains []string
		if d := strings.ToLower(strings.Trim(domain, ".")); d != "" && !strings.ContainsAny(d, "/: ") {
			domains = []string{d} // as config.Parse normalizes them
		}
		r := &http.Request{Method: http.MethodGet, Host: host, URL: u, Header: http.Header{}}
		tgt, err := route(r, domains)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) || (e.Code.String() != "InvalidURI" && e.Code.String() != "InvalidBucketName") {
				t.Fatalf("route(%q, %q) failed with %v, want InvalidURI or InvalidBucketName", host, target, err)
			}
			return
		}
		if tgt.bucket != "" && !validBucketName(tgt.bucket) {
			t.Fatalf("routed to the invalid bucket name %q", tgt.bucket)
		}
		if key, _ := url.PathUnescape(tgt.escapedKey); key != tgt.key {
			t.Fatalf("key %q is not its escaped form %q decoded", tgt.key, tgt.escapedKey)
		}
		if hasDotSegment(tgt.key) {
			t.Fatalf("routed key %q has a dot segment", tgt.key)
		}
		if !utf8.ValidString(tgt.key) {
			t.Fatalf("routed key %q is not UTF-8: the callables would see another key", tgt.key)
		}
		if tgt.escapedKey != "" {
			if enc, err := sigv4.EncodePath(tgt.escapedKey); err != nil || enc != tgt.escapedKey {
				t.Fatalf("key %q is not canonical (re-encodes to %q, %v)", tgt.escapedKey, enc, err)
			}
			if _, err := url.PathUnescape(tgt.escapedKey); err != nil {
				t.Fatalf("key %q does not unescape: %v", tgt.escapedKey, err)
			}
		}
		signed, err := sigv4.EncodePath(u.EscapedPath())
		if err != nil {
			t.Fatalf("routed %q, whose path the verifier cannot canonicalize: %v", target, err)
		}
		if !strings.HasPrefix(signed, "/") {
			signed = "/" + signed // OPTIONS *: the first (only) segment is the bucket all the same
		}
		hostOnly := strings.ToLower(host)
		if h, _, err := net.SplitHostPort(hostOnly); err == nil {
			hostOnly = h
		}
		virtual := ""
		for _, d := range domains {
			if b, ok := strings.CutSuffix(hostOnly, "."+d); ok && b != "" {
				virtual = b
				break
			}
		}
		if virtual != "" {
			if tgt.bucket != virtual {
				t.Fatalf("host %q under %q routed to bucket %q", host, domains[0], tgt.bucket)
			}
			if want := "/" + tgt.escapedKey; signed != want && !(tgt.escapedKey == "" && signed == "/") {
				t.Fatalf("virtual-hosted %q: signed path %q but routed key %q", target, signed, tgt.escapedKey)
			}
			return
		}
		routed := "/" + sigv4.Encode(tgt.bucket)
		if tgt.escapedKey != "" {
			routed += "/" + tgt.escapedKey
		}
		if signed != routed && signed != routed+"/" {
			t.Fatalf("path %q: signed %q but routed bucket %q key %q (%q)", target, signed, tgt.bucket, tgt.escapedKey, routed)
		}
		// Routing the routed form again gives the same target.
		again, err := parsePathStyle(routed)
		if err != nil || again != tgt {
			t.Fatalf("re-routing %q gave %+v, %v; want %+v", routed, again, err, tgt)
		}
	})
}

// FuzzCopySource feeds arbitrary x-amz-copy-source headers to the parser
// checkCopySource uses. It must never panic; it refuses only with
// InvalidArgument; what it accepts names a valid bucket and a non-empty
// UTF-8 key without dot segments; the leading '/' is optional; and
// re-encoding what it found parses back to the same bucket and key.
func FuzzCopySource(f *testing.F) {
	f.Add("bucket/key")
	f.Add("/bucket/dir/key.txt?versionId=3")
	f.Add("bucket/a%20b%2Fc")
	f.Add("/bucket")
	f.Add("//bucket/key")
	f.Add("bucket/%zz")
	f.Add("b%2Fx/k")
	f.Add("bucket/key%3FversionId%3D1")
	f.Add("bucket/../other/key")
	f.Add("bucket/a/%2e%2E/key")
	f.Add("bucket/%FF")
	f.Add("bucket/key?versionId=a%2Bb")
	f.Add("bucket/key?versionId=1&x=2")
	f.Add("bucket/a+b c")
	f.Fuzz(func(t *testing.T, header string) {
		ref, err := copySource(header)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) || e.Code.String() != "InvalidArgument" {
				t.Fatalf("copySource(%q) failed with %v, want InvalidArgument", header, err)
			}
			if ref != (copySourceRef{}) {
				t.Fatalf("copySource(%q) failed but named %+v", header, ref)
			}
			return
		}
		if !validBucketName(ref.bucket) || ref.key == "" {
			t.Fatalf("copySource(%q) accepted the bucket %q or the empty key %q", header, ref.bucket, ref.key)
		}
		if hasDotSegment(ref.key) || !utf8.ValidString(ref.key) {
			t.Fatalf("copySource(%q) accepted the key %q (dot segment or not UTF-8)", header, ref.key)
		}
		if !strings.HasPrefix(header, "/") {
			again, err := copySource("/" + header)
			if err != nil || again != ref {
				t.Fatalf("a leading '/' changed %q: %+v, %v; want %+v", header, again, err, ref)
			}
		}
		// What the backend gets names the same object, and only unreserved
		// characters, '/', '%XX' and the versionId separator are left raw.
		canonical := ref.canonical()
		again, err := copySource(canonical)
		if err != nil || again != ref {
			t.Fatalf("the canonical form %q of %q parses to %+v, %v; want %+v", canonical, header, again, err, ref)
		}
		if strings.ContainsAny(strings.Replace(canonical, "?versionId=", "", 1), "+ ?&=") {
			t.Fatalf("the canonical form %q holds a character a backend could decode otherwise", canonical)
		}
	})
}
