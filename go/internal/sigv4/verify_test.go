package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// The signature examples published in the Amazon S3 API reference
// ("Signature Calculations for the Authorization Header: Transferring
// Payload in a Single Chunk").
const (
	exampleAccessKey = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleDate      = "20130524T000000Z"
)

var exampleTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func exampleRequest(method, target string, headers map[string]string, signed, signature string) *http.Request {
	r := httptest.NewRequest(method, "http://examplebucket.s3.amazonaws.com"+target, nil)
	r.Header.Set("X-Amz-Date", exampleDate)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+exampleAccessKey+"/20130524/us-east-1/s3/aws4_request,SignedHeaders="+signed+",Signature="+signature)
	return r
}

func TestPublishedS3Examples(t *testing.T) {
	cases := []struct {
		name, method, target string
		headers              map[string]string
		signed, signature    string
	}{
		{
			name: "GET object", method: "GET", target: "/test.txt",
			headers: map[string]string{"Range": "bytes=0-9", "X-Amz-Content-Sha256": EmptySHA256},
			signed:  "host;range;x-amz-content-sha256;x-amz-date", signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		},
		{
			name: "PUT object", method: "PUT", target: "/test$file.text",
			headers: map[string]string{
				"Date":                 "Fri, 24 May 2013 00:00:00 GMT",
				"X-Amz-Storage-Class":  "REDUCED_REDUNDANCY",
				"X-Amz-Content-Sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
			},
			signed: "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
		},
		{
			name: "GET bucket lifecycle", method: "GET", target: "/?lifecycle",
			headers: map[string]string{"X-Amz-Content-Sha256": EmptySHA256},
			signed:  "host;x-amz-content-sha256;x-amz-date", signature: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
		},
		{
			name: "GET bucket list objects", method: "GET", target: "/?max-keys=2&prefix=J",
			headers: map[string]string{"X-Amz-Content-Sha256": EmptySHA256},
			signed:  "host;x-amz-content-sha256;x-amz-date", signature: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
		},
	}
	v := NewVerifier(func() time.Time { return exampleTime.Add(time.Minute) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exampleRequest(c.method, c.target, c.headers, c.signed, c.signature)
			a, err := ParseHeaderAuth(r)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if a.AccessKey != exampleAccessKey || a.Scope.Region != "us-east-1" {
				t.Fatalf("parsed %+v", a.Credential)
			}
			if _, err := v.VerifyHeaderAuth(r, queryOf(r), a, exampleSecret); err != nil {
				t.Fatalf("published example rejected: %v", err)
			}
			if _, err := v.VerifyHeaderAuth(r, queryOf(r), a, exampleSecret+"x"); code(err) != "SignatureDoesNotMatch" {
				t.Fatalf("wrong secret: got %v, want SignatureDoesNotMatch", err)
			}
		})
	}
}

func code(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	return ""
}

// TestRoundTripWithSDKSigner signs with aws-sdk-go-v2 (what the proxy uses
// toward backends) and verifies with this package, over keys that need
// careful encoding.
func TestRoundTripWithSDKSigner(t *testing.T) {
	now := time.Now().UTC()
	v := NewVerifier(nil)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: "client", SecretAccessKey: "s3cr3t/+"}
	keys := []string{"plain.txt", "with space", "plus+sign", "percent%25", "uni/ключ/ü", "a//b/", "tilde~x", "q?x=1"}
	for _, key := range keys {
		escaped := "/bucket/" + encodeKey(key)
		r := httptest.NewRequest("PUT", "http://proxy.local:8080"+escaped+"?uploadId=a%2Bb&partNumber=1&acl", strings.NewReader(""))
		r.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
		r.Header.Set("X-Amz-Meta-Note", "  two  spaces ")
		r.Header.Set("Content-Type", "text/plain")
		if err := signer.SignHTTP(context.Background(), creds, r, EmptySHA256, "s3", "eu-west-9", now); err != nil {
			t.Fatal(err)
		}
		a, err := ParseHeaderAuth(r)
		if err != nil {
			t.Fatalf("%q: parse: %v", key, err)
		}
		if _, err := v.VerifyHeaderAuth(r, queryOf(r), a, creds.SecretAccessKey); err != nil {
			t.Errorf("%q: SDK signature rejected: %v", key, err)
		}
		r.Header.Set("X-Amz-Meta-Note", "tampered")
		if _, err := v.VerifyHeaderAuth(r, queryOf(r), a, creds.SecretAccessKey); code(err) != "SignatureDoesNotMatch" {
			t.Errorf("%q: tampered header: got %v", key, err)
		}
	}
}

func encodeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = Encode(s)
	}
	return strings.Join(segs, "/")
}

func TestRejections(t *testing.T) {
	good := func() *http.Request {
		return exampleRequest("GET", "/test.txt", map[string]string{"Range": "bytes=0-9", "X-Amz-Content-Sha256": EmptySHA256},
			"host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	}
	cases := []struct {
		name   string
		mutate func(r *http.Request)
		now    time.Time
		want   string
	}{
		{"skewed 20 minutes", nil, exampleTime.Add(20 * time.Minute), "RequestTimeTooSkewed"},
		{"future 20 minutes", nil, exampleTime.Add(-20 * time.Minute), "RequestTimeTooSkewed"},
		{"unsigned x-amz header", func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }, exampleTime, "AccessDenied"},
		{"host not signed", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
		}, exampleTime, "AuthorizationHeaderMalformed"},
		{"tampered range", func(r *http.Request) { r.Header.Set("Range", "bytes=0-99") }, exampleTime, "SignatureDoesNotMatch"},
		{"other path", func(r *http.Request) { r.URL.Path = "/test.txu"; r.URL.RawPath = "" }, exampleTime, "SignatureDoesNotMatch"},
		{"added query", func(r *http.Request) { r.URL.RawQuery = "acl" }, exampleTime, "SignatureDoesNotMatch"},
		{"other method", func(r *http.Request) { r.Method = "DELETE" }, exampleTime, "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := good()
			if c.mutate != nil {
				c.mutate(r)
			}
			now := c.now
			v := NewVerifier(func() time.Time { return now })
			a, err := ParseHeaderAuth(r)
			if err == nil {
				_, err = v.VerifyHeaderAuth(r, queryOf(r), a, exampleSecret)
			}
			if code(err) != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
}

func TestParseAuthorizationMalformed(t *testing.T) {
	sig := strings.Repeat("a", 64)
	cases := map[string]string{
		// S3: no space, or another algorithm, is InvalidArgument.
		"":                 "InvalidArgument",
		"AWS4-HMAC-SHA256": "InvalidArgument",
		"AWS AKID:c2ln":    "InvalidRequest",
		"AWS4-HMAC-SHA512 Credential=a/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig:               "InvalidArgument",
		"AWS4-HMAC-SHA256 Credential=a/2013/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig:                   "AuthorizationHeaderMalformed",
		"AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=" + sig:              "AuthorizationHeaderMalformed",
		"AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=xyz":                  "AuthorizationHeaderMalformed",
		"AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, Signature=" + sig:                                   "AuthorizationHeaderMalformed",
		"AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig + ", Extra=1": "AuthorizationHeaderMalformed",
	}
	for header, want := range cases {
		if _, err := ParseAuthorization(header); code(err) != want {
			t.Errorf("%q: got %v, want %s", header, err, want)
		}
	}
	c, err := ParseAuthorization("AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-date,Signature=" + sig)
	if err != nil || c.AccessKey != "a" || len(c.SignedHeaders) != 2 {
		t.Fatalf("got %+v, %v", c, err)
	}
}

// TestCanonicalisationLeavesTheRequestAlone: a signed value with runs of
// spaces verifies, and the request forwarded afterwards still carries it
// byte for byte (Header.Values returns the map's own slice).
func TestCanonicalisationLeavesTheRequestAlone(t *testing.T) {
	now := time.Now().UTC()
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: "client", SecretAccessKey: "s"}
	r := httptest.NewRequest("PUT", "http://proxy.local/bucket/k", strings.NewReader(""))
	r.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
	r.Header["X-Amz-Meta-A"] = []string{"a   b    c"}
	r.Header["Cache-Control"] = []string{"no-store,   private", "  max-age=1  "}
	if err := signer.SignHTTP(context.Background(), creds, r, EmptySHA256, "s3", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	a, err := ParseHeaderAuth(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(nil).VerifyHeaderAuth(r, queryOf(r), a, creds.SecretAccessKey); err != nil {
		t.Fatal(err)
	}
	if got := r.Header["X-Amz-Meta-A"]; len(got) != 1 || got[0] != "a   b    c" {
		t.Fatalf("the signed value was changed in the request: %q", got)
	}
	if got := r.Header["Cache-Control"]; len(got) != 2 || got[0] != "no-store,   private" || got[1] != "  max-age=1  " {
		t.Fatalf("the signed values were changed in the request: %q", got)
	}
	if v, _ := HeaderValue(r, "cache-control"); v != "no-store, private,max-age=1" {
		t.Fatalf("canonical value %q", v)
	}
}

func TestAdmitHeaderAuthNeedsNoSecret(t *testing.T) {
	r := exampleRequest("GET", "/test.txt", map[string]string{"Range": "bytes=0-9", "X-Amz-Content-Sha256": EmptySHA256},
		"host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	a, err := ParseHeaderAuth(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		now    time.Time
		signed []string
		want   string
	}{
		{"valid", exampleTime, a.SignedHeaders, ""},
		{"skewed", exampleTime.Add(16 * time.Minute), a.SignedHeaders, "RequestTimeTooSkewed"},
		{"host not signed", exampleTime, []string{"range", "x-amz-content-sha256", "x-amz-date"}, "AuthorizationHeaderMalformed"},
		{"upper case name", exampleTime, []string{"host", "Range", "x-amz-content-sha256", "x-amz-date"}, "AuthorizationHeaderMalformed"},
		{"name twice", exampleTime, []string{"host", "range", "range", "x-amz-content-sha256", "x-amz-date"}, "AuthorizationHeaderMalformed"},
		{"empty name", exampleTime, []string{"host", "", "x-amz-content-sha256", "x-amz-date"}, "AuthorizationHeaderMalformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := a
			b.SignedHeaders = c.signed
			if err := NewVerifier(func() time.Time { return c.now }).AdmitHeaderAuth(r, &b); code(err) != c.want {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	long := []string{"host", "x-amz-content-sha256", "x-amz-date"}
	for i := range 40 {
		long = append(long, "x-a"+strings.Repeat("b", i))
	}
	if !distinctLowerNames(long) || distinctLowerNames(append(long, "x-abbb")) {
		t.Fatal("distinctLowerNames is wrong on a long list")
	}
}

// queryOf is r's query, parsed as the proxy parses it once per request.
func queryOf(r *http.Request) Query {
	q, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		panic(err)
	}
	return q
}

// TestAdmissionIsForOneRequest: VerifyHeaderAuth and VerifyPresigned skip
// the signed-header checks only for the very request admitted; for any
// other they run them, and refuse an unsigned x-amz-* header.
func TestAdmissionIsForOneRequest(t *testing.T) {
	r := exampleRequest("GET", "/test.txt", map[string]string{"Range": "bytes=0-9", "X-Amz-Content-Sha256": EmptySHA256},
		"host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	v := NewVerifier(func() time.Time { return exampleTime })
	a, err := ParseHeaderAuth(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.AdmitHeaderAuth(r, &a); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyHeaderAuth(r, queryOf(r), a, exampleSecret); err != nil {
		t.Fatal(err)
	}
	other := r.Clone(r.Context())
	other.Header.Set("X-Amz-Acl", "public-read")
	if _, err := v.VerifyHeaderAuth(other, queryOf(other), a, exampleSecret); code(err) != "AccessDenied" {
		t.Fatalf("header auth admitted for another request: got %v, want AccessDenied", err)
	}

	p := httptest.NewRequest("GET", examplePresigned, nil)
	pa, err := ParsePresigned(p.URL.Query())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.AdmitPresigned(p, &pa); err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyPresigned(p, queryOf(p), pa, exampleSecret); err != nil {
		t.Fatal(err)
	}
	other = p.Clone(p.Context())
	other.Header.Set("X-Amz-Acl", "public-read")
	if err := v.VerifyPresigned(other, queryOf(other), pa, exampleSecret); code(err) != "AccessDenied" {
		t.Fatalf("presigned admitted for another request: got %v, want AccessDenied", err)
	}
}
