package proxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/s3err"
)

// applyRule is the forwarding rule as prepare and outgoing apply it.
func applyRule(in http.Header, signed []string) (http.Header, []string, error) {
	dropped, err := checkForwarding(in, signed)
	if err != nil {
		return nil, nil, err
	}
	return forwardedHeader(in, signed), dropped, nil
}

// baseSigned is what boto3 signs on a PUT with one metadata header.
var baseSigned = []string{"content-md5", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-a"}

func TestForwardingRule(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      http.Header
		signed  []string
		want    http.Header // headers forwarded, User-Agent aside
		dropped []string
		code    string // the refusal, "" for none
	}{
		{
			name:   "signed headers pass, the proxy's own do not",
			in:     http.Header{"X-Amz-Meta-A": {"a   b"}, "Content-Md5": {"m"}, "Authorization": {"c"}, "X-Amz-Date": {"d"}, "X-Amz-Content-Sha256": {"h"}},
			signed: baseSigned,
			want:   http.Header{"x-amz-meta-a": {"a   b"}, "Content-Md5": {"m"}},
		},
		{
			name:    "unsigned headers are dropped unless allowlisted",
			in:      http.Header{"Cache-Control": {"no-store"}, "Content-Disposition": {"x"}, "Range": {"bytes=0-1"}, "Content-Type": {"t"}, "If-Match": {"e"}, "Content-Length": {"1"}},
			signed:  baseSigned,
			want:    http.Header{"Cache-Control": {"no-store"}, "Range": {"bytes=0-1"}, "Content-Type": {"t"}, "If-Match": {"e"}, "Content-Length": {"1"}},
			dropped: []string{"Content-Disposition"},
		},
		{
			name:   "signed forwarding and hop-by-hop headers are dropped all the same",
			in:     http.Header{"X-Forwarded-For": {"1", "2"}, "Via": {"a", "b"}, "Expect": {"100-continue"}, "Te": {"trailers"}, "Keep-Alive": {"5"}},
			signed: append(slices.Clone(baseSigned), "x-forwarded-for", "via", "expect"),
			want:   http.Header{},
		},
		{
			name:   "an unsigned x-amz-* header is refused",
			in:     http.Header{"X-Amz-Copy-Source": {"b/k"}},
			signed: baseSigned,
			code:   "AccessDenied",
		},
		{
			name:   "a signed header twice",
			in:     http.Header{"X-Amz-Meta-A": {"1", "2"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "a signed list header twice is joined as SigV4 signed it",
			in:     http.Header{"X-Amz-Object-Attributes": {" ETag ", "Object  Size"}},
			signed: append(slices.Clone(baseSigned), "x-amz-object-attributes"),
			want:   http.Header{"X-Amz-Object-Attributes": {"ETag,Object Size"}},
		},
		{
			name:   "an unsigned list header twice is refused as unsigned",
			in:     http.Header{"X-Amz-Object-Attributes": {"ETag", "ObjectSize"}},
			signed: baseSigned,
			code:   "AccessDenied",
		},
		{
			name:   "an allowlisted header twice",
			in:     http.Header{"Content-Type": {"a", "b"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:    "a dropped header twice",
			in:      http.Header{"X-Custom": {"1", "2"}},
			signed:  baseSigned,
			want:    http.Header{},
			dropped: []string{"X-Custom"},
		},
		{
			name:   "a name Go would not have written",
			in:     http.Header{"x-amz-meta-a": {"1"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "Connection naming a signed header",
			in:     http.Header{"Connection": {"close, X-Amz-Meta-A"}, "X-Amz-Meta-A": {"1"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "Connection naming an x-amz-* header that is absent",
			in:     http.Header{"Connection": {"x-amz-copy-source"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "Connection naming an allowlisted header",
			in:     http.Header{"Connection": {"range"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "Connection naming Authorization",
			in:     http.Header{"Connection": {"Authorization"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "Connection naming Host",
			in:     http.Header{"Connection": {"host"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "Connection naming Content-Length",
			in:     http.Header{"Connection": {"Content-Length"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:   "Connection naming Transfer-Encoding",
			in:     http.Header{"Connection": {"keep-alive", "transfer-encoding"}},
			signed: baseSigned,
			code:   "InvalidArgument",
		},
		{
			name:    "Connection naming options and dropped headers",
			in:      http.Header{"Connection": {"Close, keep-alive, TE, upgrade, X-Forwarded-For, Via, Expect, X-Hop,"}, "X-Hop": {"1"}},
			signed:  baseSigned,
			want:    http.Header{},
			dropped: []string{"X-Hop"},
		},
		{
			name:   "an empty header name, signed by an empty entry (found by FuzzForwardedHeader)",
			in:     http.Header{"": {"0"}, "Connection": {" "}},
			signed: append([]string{""}, baseSigned...),
			code:   "InvalidArgument",
		},
		{
			name:   "a signed header name that is no token",
			in:     http.Header{"X-Amz-Meta-A B": {"1"}},
			signed: append([]string{"x-amz-meta-a b"}, baseSigned...),
			code:   "InvalidArgument",
		},
		{
			name:   "no signed list: nothing but the allowlist (and x-amz-* refused)",
			in:     http.Header{"X-Amz-Meta-A": {"1"}},
			signed: nil,
			code:   "AccessDenied",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, dropped, err := applyRule(c.in, c.signed)
			if c.code != "" {
				var e *s3err.Error
				if !errors.As(err, &e) || e.Code.String() != c.code {
					t.Fatalf("got %v, %v; want the error %s", out, err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ua := out["User-Agent"]; !reflect.DeepEqual(ua, []string{""}) && c.in["User-Agent"] == nil {
				t.Fatalf("User-Agent %q, want empty", ua)
			}
			delete(out, "User-Agent")
			if !reflect.DeepEqual(out, c.want) {
				t.Fatalf("forwarded %v, want %v", out, c.want)
			}
			slices.Sort(dropped)
			if !slices.Equal(dropped, c.dropped) {
				t.Fatalf("dropped %v, want %v", dropped, c.dropped)
			}
		})
	}
}

func TestScreen(t *testing.T) {
	for _, c := range []struct {
		name, target string
		header       http.Header
		code         string // "" for accepted
	}{
		{"plain", "/b/k?x-id=PutObject", http.Header{"X-Amz-Meta-A": {"1"}}, ""},
		{"copy source", "/b/k", http.Header{"X-Amz-Copy-Source": {"/b/a%20b?versionId=1"}}, ""},
		{"underscore", "/b/k", http.Header{"X_amz_copy_source": {"b/k"}}, "InvalidArgument"},
		{"underscore anywhere", "/b/k", http.Header{"Some_header": {"1"}}, "InvalidArgument"},
		{"copy source twice", "/b/k", http.Header{"X-Amz-Copy-Source": {"b/k", "o/s"}}, "InvalidArgument"},
		{"copy source empty", "/b/k", http.Header{"X-Amz-Copy-Source": {""}}, "InvalidArgument"},
		{"copy source blank", "/b/k", http.Header{"X-Amz-Copy-Source": {"  "}}, "InvalidArgument"},
		{"copy source dot-dot", "/b/k", http.Header{"X-Amz-Copy-Source": {"b/a/../s"}}, "InvalidArgument"},
		{"copy source encoded dot-dot", "/b/k", http.Header{"X-Amz-Copy-Source": {"b/a/%2E%2e/s"}}, "InvalidArgument"},
		{"copy source encoded slash dot-dot", "/b/k", http.Header{"X-Amz-Copy-Source": {"b/..%2Fo%2Fs"}}, "InvalidArgument"},
		{"copy source dot", "/b/k", http.Header{"X-Amz-Copy-Source": {"b/./s"}}, "InvalidArgument"},
		{"copy source not UTF-8", "/b/k", http.Header{"X-Amz-Copy-Source": {"b/%FF"}}, "InvalidArgument"},
		{"copy source bad bucket", "/b/k", http.Header{"X-Amz-Copy-Source": {"b%20c/k"}}, "InvalidArgument"},
		{"copy source in the query", "/b/k?x-amz-copy-source=o%2Fs", nil, "InvalidArgument"},
		{"copy source in the query, folded", "/b/k?X-AMZ-COPY-SOURCE-RANGE=bytes%3D0-1", nil, "InvalidArgument"},
		{"query not UTF-8", "/b?list-type=2&prefix=%FF", nil, "InvalidArgument"},
		{"query key not UTF-8", "/b?%C3=1", nil, "InvalidArgument"},
		{"query with a bad escape", "/b?prefix=a%zz", nil, "InvalidArgument"},
		{"query with a semicolon", "/b?prefix=a;b", nil, "InvalidArgument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPut, "http://h"+c.target, nil)
			for k, v := range c.header {
				r.Header[k] = v
			}
			_, err := screen(httptest.NewRecorder(), r)
			var e *s3err.Error
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.code != "" && (!errors.As(err, &e) || e.Code.String() != c.code || e.Status() != http.StatusBadRequest):
				t.Fatalf("got %v, want 400 %s", err, c.code)
			}
		})
	}
}

func TestRouteRefusesKeysNotUTF8(t *testing.T) {
	for _, target := range []string{"/b/%FF", "/b/a%C3", "/b/%ED%A0%80", "/b/ok/%C0%AF"} {
		r := httptest.NewRequest(http.MethodGet, "http://h"+target, nil)
		var e *s3err.Error
		if _, err := route(r, nil); !errors.As(err, &e) || e.Code.String() != "InvalidURI" {
			t.Errorf("%s: %v, want InvalidURI", target, err)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "http://h/b/gr%C3%BC%C3%9Fe", nil)
	if tgt, err := route(r, nil); err != nil || tgt.key != "grüße" {
		t.Fatalf("a UTF-8 key: %+v, %v", tgt, err)
	}
}

// FuzzForwardedHeader feeds arbitrary headers, signed-header lists and
// Connection values to the forwarding rule. It must never panic; it
// refuses only with AccessDenied or InvalidArgument; and what it forwards
// is signed or allowlisted, never a proxy or hop-by-hop header, once each,
// and never a header the Connection header names.
func FuzzForwardedHeader(f *testing.F) {
	f.Add("X-Amz-Meta-A", "1", "x-amz-meta-a;host", "", false)
	f.Add("Cache-Control", "no-store", "host", "close", true)
	f.Add("Range", "bytes=0-1", "host", "Range", false)
	f.Add("X-Forwarded-For", "1.2.3.4", "host;x-forwarded-for", "X-Forwarded-For", true)
	f.Add("X-Amz-Copy-Source", "b/k", "host", "keep-alive, x-amz-copy-source", false)
	f.Add("content-type", "t", "host;content-type", "", true)
	f.Fuzz(func(t *testing.T, name, value, signedList, connection string, twice bool) {
		in := http.Header{name: {value}}
		if twice {
			in[name] = append(in[name], value)
		}
		if connection != "" {
			in["Connection"] = []string{connection}
		}
		signed := strings.Split(signedList, ";")
		out, dropped, err := applyRule(in, signed)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) || (e.Code.String() != "AccessDenied" && e.Code.String() != "InvalidArgument") {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		for got, values := range out {
			canon := textproto.CanonicalMIMEHeaderKey(got)
			if got == "User-Agent" && in["User-Agent"] == nil {
				continue // the proxy's empty one
			}
			if isDropped(canon) {
				t.Fatalf("forwarded the proxy or hop-by-hop header %q", got)
			}
			if !unsignedAllowed(canon) && !containsFold(signed, got) {
				t.Fatalf("forwarded %q, neither signed (%q) nor allowlisted", got, signedList)
			}
			if len(values) != 1 {
				t.Fatalf("forwarded %q %d times", got, len(values))
			}
			if listsToken(in["Connection"], got) {
				t.Fatalf("forwarded %q, which Connection %q names", got, connection)
			}
		}
		for _, d := range dropped {
			if _, ok := out[d]; ok {
				t.Fatalf("%q both dropped and forwarded", d)
			}
		}
	})
}

// forwardedHeader is the header map forwardHeaders fills for in.
func forwardedHeader(in http.Header, signed []string) http.Header {
	b := &backendRequest{header: http.Header{}}
	b.forwardHeaders(in, signed)
	return b.header
}

// backendURL is the URL setURL sets for fw, and the Host it names.
func backendURL(fw *forward) (*url.URL, string) {
	b := &backendRequest{header: http.Header{}}
	host := b.setURL(fw, hostOf("", fw.bucket))
	return &b.url, host
}

func TestTailOrJoin(t *testing.T) {
	for _, c := range []struct {
		s     string
		parts []string
		tail  bool
	}{
		{"/data/k", []string{"/", "data", "/", "k"}, true},
		{"/data/k", []string{"/", "k"}, true},
		{"/data/a/k", []string{"/", "a/k"}, true},
		{"/data/k", []string{"/", "dat", "a/k"}, true},
		{"/data/k", []string{"/", "data"}, false},
		{"/data/k/", []string{"/", "k"}, false},
		{"/k", []string{"/", "data", "/", "k"}, false},
		{"", []string{"/", "data"}, false},
		{"/data/%7E", []string{"/", "data", "/", "~"}, false},
	} {
		got := tailOrJoin(c.s, c.parts...)
		if got != strings.Join(c.parts, "") {
			t.Errorf("tailOrJoin(%q, %q) = %q", c.s, c.parts, got)
		}
		if isTail := len(got) > 0 && len(got) <= len(c.s) && unsafe.StringData(got) == unsafe.StringData(c.s[len(c.s)-len(got):]); isTail != c.tail {
			t.Errorf("tailOrJoin(%q, %q): tail of s %v, want %v", c.s, c.parts, isTail, c.tail)
		}
	}
}

// setURL takes the backend's path from the client's when it is the same
// bytes, and a virtual-hosted backend's Host as joined in advance for its
// cos_map entry: no string is made for either.
func TestSetURLReusesTheClientsPath(t *testing.T) {
	for style, wantAllocs := range map[string]float64{config.PathStyle: 0, config.VirtualStyle: 0} {
		bucket := &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: style}
		r := httptest.NewRequest(http.MethodGet, "http://proxy/data/a/b.txt", nil)
		tgt, err := route(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		fw := &forward{target: tgt, clientPath: writtenPath(r.URL), bucket: bucket}
		b := &backendRequest{header: http.Header{}}
		hosts := hostOf("data", bucket)
		allocs := testing.AllocsPerRun(100, func() { b.setURL(fw, hosts) })
		want, _ := backendURL(&forward{target: tgt, bucket: bucket})
		if allocs != wantAllocs || b.url != *want {
			t.Errorf("%s: %v allocations, URL %+v, want %v and %+v", style, allocs, b.url, wantAllocs, *want)
		}
	}
}

// The sets of header names, as switches, are the maps they were.
func TestHeaderSets(t *testing.T) {
	sets := []struct {
		is    func(string) bool
		names map[string]bool
	}{
		{droppedHeader, map[string]bool{
			"Authorization": true, "X-Amz-Date": true, "X-Amz-Content-Sha256": true, "X-Amz-Security-Token": true,
			"Expect": true, "Forwarded": true, "Via": true, "X-Real-Ip": true,
		}},
		{hopHeader, map[string]bool{
			"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
			"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
		}},
		{unsignedAllowed, map[string]bool{
			"Content-Length": true, "Content-Type": true, "Cache-Control": true, "Content-Md5": true, "User-Agent": true,
			"Range": true, "If-Match": true, "If-None-Match": true, "If-Modified-Since": true, "If-Unmodified-Since": true,
		}},
	}
	var all []string
	for _, set := range sets {
		for name := range set.names {
			all = append(all, name, strings.ToLower(name), name+"x", name[:len(name)-1])
		}
	}
	for i, set := range sets {
		for _, name := range append(all, "", "X-Amz-Meta-A", "Host") {
			if set.is(name) != set.names[name] {
				t.Errorf("set %d: %q: %v", i, name, set.is(name))
			}
		}
	}
}

// A virtual-hosted backend's Host is the bucket's name under the
// endpoint, whether joined in advance (an entry naming one bucket) or per
// request (a pattern, or one entry under two names).
func TestBackendHostVirtual(t *testing.T) {
	bucket := &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: config.VirtualStyle}
	h := New(Options{Buckets: map[string]*config.Bucket{"a": bucket, "b": bucket, "team-*": {Host: "s3.example", Port: 8443, AddressingStyle: config.VirtualStyle}}})
	for _, c := range []struct {
		entry        *config.Bucket
		bucket, want string
	}{
		{bucket, "a", "a.s3.example"},
		{bucket, "b", "b.s3.example"},
		{h.opts.Buckets["team-*"], "team-x", "team-x.s3.example:8443"},
	} {
		if got := h.backendHost(c.entry).virtualHost(c.bucket); got != c.want {
			t.Errorf("%s: host %q, want %q", c.bucket, got, c.want)
		}
	}
	one := hostOf("data", bucket)
	if one.virtualHost("data") != "data.s3.example" || one.virtualHost("other") != "other.s3.example" {
		t.Errorf("entry data: hosts %q, %q", one.virtualHost("data"), one.virtualHost("other"))
	}
	if path := hostOf("data", &config.Bucket{Host: "s3.example", Port: 443, Scheme: "https", AddressingStyle: config.PathStyle}); path.virtual != "" {
		t.Errorf("a path-style entry has a virtual host %q", path.virtual)
	}
}
