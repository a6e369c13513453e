package sigv4

import (
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParseAuthorization feeds arbitrary Authorization headers to the
// parser: it must never panic, and what it accepts must be well formed.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	f.Add("AWS4-HMAC-SHA256 Credential=a/20130524/r/s3/aws4_request, SignedHeaders=host, Signature=")
	f.Add("AWS AKID:c2lnbmF0dXJl")
	f.Add("AWS4-HMAC-SHA256 Credential=///////,SignedHeaders=;;;,Signature=zz")
	f.Add("AWS4-HMAC-SHA256 Credential=a/20240229/r/s3/aws4_request,Signature=x,Credential=b")
	f.Add("AWS4-HMAC-SHA256 Credential=a/20230229/r/s3/aws4_request, SignedHeaders=host, Foo=1")
	f.Fuzz(func(t *testing.T, header string) {
		c, err := ParseAuthorization(header)
		// The same decision, in the same words, as before it was made
		// allocation-free.
		want, wantErr := referenceParseAuthorization(header)
		if !reflect.DeepEqual(err, wantErr) || !reflect.DeepEqual(c, want) {
			t.Fatalf("ParseAuthorization(%q) = %+v, %v; the reference %+v, %v", header, c, err, want, wantErr)
		}
		if err != nil {
			return
		}
		if c.AccessKey == "" || len(c.SignedHeaders) == 0 || !isLowerHex(c.Signature, 64) || c.Scope.Service != "s3" {
			t.Fatalf("accepted a malformed header %q: %+v", header, c)
		}
	})
}

// FuzzParseHeaderAuth compares ParseHeaderAuth with the reference
// implementation it replaced (reference_test.go): the same result, or the
// same refusal in the same words, for any Authorization, x-amz-date and
// x-amz-content-sha256, each given once or twice (the bits of repeat) or
// not at all (empty).
func FuzzParseHeaderAuth(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		"20130524T000000Z", EmptySHA256, uint8(0))
	f.Add("AWS4-HMAC-SHA256 Credential=a/20130524/r/s3/aws4_request, SignedHeaders=host, Signature="+strings.Repeat("0", 64),
		"20130524T235959.123456789012Z", "UNSIGNED-PAYLOAD", uint8(0))
	f.Add("AWS4-HMAC-SHA256 Credential=a/20130524/r/s3/aws4_request, SignedHeaders=host, Signature="+strings.Repeat("0", 64),
		"20130524T240000Z", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", uint8(6))
	f.Add("", "", "", uint8(1))
	f.Fuzz(func(t *testing.T, authorization, date, payload string, repeat uint8) {
		r := &http.Request{Header: http.Header{}}
		for i, h := range []struct{ name, value string }{{"Authorization", authorization}, {"X-Amz-Date", date}, {"X-Amz-Content-Sha256", payload}} {
			if h.value == "" {
				continue
			}
			r.Header[h.name] = []string{h.value}
			if repeat&(1<<i) != 0 {
				r.Header[h.name] = append(r.Header[h.name], h.value)
			}
		}
		got, err := ParseHeaderAuth(r)
		want, wantErr := referenceParseHeaderAuth(r)
		if !reflect.DeepEqual(err, wantErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseHeaderAuth(%q, %q, %q, %d) = %+v, %v; the reference %+v, %v", authorization, date, payload, repeat, got, err, want, wantErr)
		}
	})
}

// FuzzPresignedQuery feeds arbitrary query strings to the presigned-URL
// parser, which must take the decisions of the reference implementation it
// replaced (reference_test.go), and to the verifier.
func FuzzPresignedQuery(f *testing.F) {
	f.Add(examplePresigned[len("http://examplebucket.s3.amazonaws.com/test.txt?"):])
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=-1")
	f.Add("X-Amz-Credential=%zz&X-Amz-Signature=a&a=b&&=")
	f.Add(examplePresigned[len("http://examplebucket.s3.amazonaws.com/test.txt?"):] + "&X-Amz-Content-Sha256=x")
	f.Add(strings.Replace(examplePresigned[len("http://examplebucket.s3.amazonaws.com/test.txt?"):], "X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524T000000,25Z", 1))
	v := NewVerifier(func() time.Time { return exampleTime })
	f.Fuzz(func(t *testing.T, rawQuery string) {
		u := &url.URL{Scheme: "http", Host: "examplebucket.s3.amazonaws.com", Path: "/test.txt", RawQuery: rawQuery}
		r := &http.Request{Method: "GET", URL: u, Host: u.Host, Header: http.Header{}}
		q, err := ParseQuery(rawQuery)
		if err != nil {
			return
		}
		a, err := ParsePresigned(q.Values)
		// The same decision, in the same words, as before it was made
		// allocation-free.
		want, wantErr := referenceParsePresigned(q.Values)
		if !reflect.DeepEqual(err, wantErr) || !reflect.DeepEqual(a, want) {
			t.Fatalf("ParsePresigned(%q) = %+v, %v; the reference %+v, %v", rawQuery, a, err, want, wantErr)
		}
		if err != nil {
			return
		}
		if a.Expires <= 0 || a.Expires > MaxPresignExpiry {
			t.Fatalf("accepted expiry %v", a.Expires)
		}
		if !a.Payload.Valid() || !isLowerHex(a.Signature, 64) {
			t.Fatalf("accepted payload hash %q, signature %q", a.Payload, a.Signature)
		}
		_ = v.VerifyPresigned(r, q, a, exampleSecret)
	})
}

// FuzzCanonicalURI feeds arbitrary escaped paths and raw queries to the
// canonicalization the verifier signs and the router relies on. It must
// never panic; a canonical path is a fixed point (canonicalizing it again
// changes nothing), keeps the number of segments, and holds only
// unreserved characters, '/' and upper-case %XX; a canonical query is
// sorted, made of encoded pairs, and canonicalizing it again changes
// nothing.
func FuzzCanonicalURI(f *testing.F) {
	f.Add("/bucket/key", "list-type=2&prefix=a%2Fb")
	f.Add("/bucket/a%2Fb/c%20d+e", "uploads&x-id=GetObject")
	f.Add("//bucket/./key/../x", "X-Amz-Signature=abc&&=&a=b=c")
	f.Add("/b/%zz", "%zz")
	f.Add("/b/\u00e9\u4e16", "k=%E2%82%AC&k=1&K=0")
	f.Add("", "+=+")
	f.Add("/b", "a=1;b=2&c")
	f.Fuzz(func(t *testing.T, escapedPath, rawQuery string) {
		if p, err := EncodePath(escapedPath); err == nil {
			again, err := EncodePath(p)
			if err != nil || again != p {
				t.Fatalf("EncodePath(%q) = %q, which re-encodes to %q (%v)", escapedPath, p, again, err)
			}
			if escapedPath != "" && strings.Count(p, "/") != strings.Count(escapedPath, "/") {
				t.Fatalf("EncodePath(%q) = %q changed the segments", escapedPath, p)
			}
			for i := 0; i < len(p); i++ {
				c := p[i]
				switch {
				case c == '%':
					if i+2 >= len(p) || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) {
						t.Fatalf("EncodePath(%q) = %q: bad escape at %d", escapedPath, p, i)
					}
					i += 2
				case c == '/' || isUnreserved(c):
				default:
					t.Fatalf("EncodePath(%q) = %q: raw byte %q", escapedPath, p, c)
				}
			}
		}
		q, err := ParseQuery(rawQuery)
		if std, stdErr := url.ParseQuery(rawQuery); (err == nil) != (stdErr == nil) || (err == nil && len(q.Values)+len(std) > 0 && !reflect.DeepEqual(q.Values, std)) {
			// The proxy's one parse takes what Go's takes, read alike
			// (no parameters: a nil map, where Go's is empty).
			t.Fatalf("query %q: parsed %v (%v), Go's url.ParseQuery %v (%v)", rawQuery, q.Values, err, std, stdErr)
		}
		if err != nil {
			return
		}
		params := q.Params
		canonical := CanonicalQuery(params, nil)
		parsed, err := ParseQuery(canonical)
		if err != nil {
			t.Fatalf("canonical query %q does not parse: %v", canonical, err)
		}
		again := parsed.Params
		if c2 := CanonicalQuery(again, nil); c2 != canonical {
			t.Fatalf("canonical query %q re-canonicalizes to %q", canonical, c2)
		}
		if canonical != "" && strings.Count(canonical, "&")+1 != len(params) {
			t.Fatalf("query %q: %d params but canonical %q", rawQuery, len(params), canonical)
		}
		for i := 1; i < len(again); i++ {
			a, b := Encode(again[i-1].Key), Encode(again[i].Key)
			if a > b || (a == b && Encode(again[i-1].Value) > Encode(again[i].Value)) {
				t.Fatalf("canonical query %q is not sorted", canonical)
			}
		}
	})
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

// FuzzAllocationFreeShortcuts checks the shortcuts that spare the request
// path allocations and time against the code they replace: splitExactly
// against strings.Split, containsLowerOf against strings.ToLower,
// headerValues against http.Header.Values, parseAmzDate and
// parseScopeDate against time.Parse, isLowerHex against its first form,
// and Encode and EncodePath against encoding every byte.
func FuzzAllocationFreeShortcuts(f *testing.F) {
	f.Add("AK/20130524/us-east-1/s3/aws4_request", "X-Amz-Date")
	f.Add("a,b,c", "x-amz-meta-\u212a")
	f.Add("/bucket/a%2Fb/c d+e", "X-AMZ-\u0130")
	f.Add("", "")
	f.Add("20240229T235959Z", "20230229")
	f.Add("20130524T000000,5Z", "21000229T000000.1234567891Z")
	f.Add("2013052aT000000Z", "20131324")
	f.Fuzz(func(t *testing.T, s, name string) {
		for _, sep := range []string{",", "/"} {
			std := strings.Split(s, sep)
			var three [3]string
			var five [5]string
			if ok := splitExactly(three[:], s, sep); ok != (len(std) == 3) || ok && !slices.Equal(three[:], std) {
				t.Fatalf("splitExactly(%q, %q) into 3 = %v %q, strings.Split %q", s, sep, ok, three, std)
			}
			if ok := splitExactly(five[:], s, sep); ok != (len(std) == 5) || ok && !slices.Equal(five[:], std) {
				t.Fatalf("splitExactly(%q, %q) into 5 = %v %q, strings.Split %q", s, sep, ok, five, std)
			}
		}
		for _, list := range [][]string{{s}, {s, strings.ToLower(name)}, {strings.ToLower(s), name, "x-amz-date"}} {
			if got, want := containsLowerOf(list, name), slices.Contains(list, strings.ToLower(name)); got != want {
				t.Fatalf("containsLowerOf(%q, %q) = %v, want %v", list, name, got, want)
			}
		}
		h := http.Header{textproto.CanonicalMIMEHeaderKey(name): {"by name"}, textproto.CanonicalMIMEHeaderKey(s): {"by s"}}
		for _, key := range []string{name, s, strings.ToLower(name)} {
			if got, want := headerValues(h, key), h.Values(key); !slices.Equal(got, want) {
				t.Fatalf("headerValues(%q) = %q, Header.Values %q", key, got, want)
			}
		}
		for _, date := range []string{s, name} {
			got, ok := parseAmzDate(date)
			want, err := time.Parse(amzDateFormat, date)
			if ok != (err == nil) || !got.Equal(want) || got.Location() != want.Location() {
				t.Fatalf("parseAmzDate(%q) = %v %v, time.Parse %v %v", date, got, ok, want, err)
			}
			_, _, _, ok = parseScopeDate(date)
			if _, err := time.Parse(scopeDateFormat, date); ok != (err == nil) {
				t.Fatalf("parseScopeDate(%q) = %v, time.Parse %v", date, ok, err)
			}
		}
		if got, want := isLowerHex(s, len(s)), referenceIsLowerHex(s, len(s)); got != want {
			t.Fatalf("isLowerHex(%q) = %v, want %v", s, got, want)
		}
		var b strings.Builder
		writeEncoded(&b, s)
		if got := Encode(s); got != b.String() {
			t.Fatalf("Encode(%q) = %q, want %q", s, got, b.String())
		}
		got, err := EncodePath(s)
		want, wantErr := encodePathEverySegment(s)
		if got != want || (err == nil) != (wantErr == nil) {
			t.Fatalf("EncodePath(%q) = %q (%v), want %q (%v)", s, got, err, want, wantErr)
		}
	})
}

// encodePathEverySegment is EncodePath without its shortcut.
func encodePathEverySegment(escapedPath string) (string, error) {
	if escapedPath == "" {
		return "/", nil
	}
	var b strings.Builder
	for i, seg := range strings.Split(escapedPath, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "", err
		}
		writeEncoded(&b, dec)
	}
	return b.String(), nil
}
