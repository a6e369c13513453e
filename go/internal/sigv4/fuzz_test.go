package sigv4

import (
	"net/http"
	"net/url"
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
	f.Fuzz(func(t *testing.T, header string) {
		c, err := ParseAuthorization(header)
		if err != nil {
			return
		}
		if c.AccessKey == "" || len(c.SignedHeaders) == 0 || !isLowerHex(c.Signature, 64) || c.Scope.Service != "s3" {
			t.Fatalf("accepted a malformed header %q: %+v", header, c)
		}
	})
}

// FuzzPresignedQuery feeds arbitrary query strings to the presigned-URL
// parser and verifier.
func FuzzPresignedQuery(f *testing.F) {
	f.Add(examplePresigned[len("http://examplebucket.s3.amazonaws.com/test.txt?"):])
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=-1")
	f.Add("X-Amz-Credential=%zz&X-Amz-Signature=a&a=b&&=")
	v := NewVerifier(func() time.Time { return exampleTime })
	f.Fuzz(func(t *testing.T, rawQuery string) {
		u := &url.URL{Scheme: "http", Host: "examplebucket.s3.amazonaws.com", Path: "/test.txt", RawQuery: rawQuery}
		r := &http.Request{Method: "GET", URL: u, Host: u.Host, Header: http.Header{}}
		a, err := ParsePresigned(r, r.URL.Query())
		if err != nil {
			return
		}
		if a.Expires <= 0 || a.Expires > MaxPresignExpiry {
			t.Fatalf("accepted expiry %v", a.Expires)
		}
		_ = v.VerifyPresigned(r, a, exampleSecret)
	})
}
