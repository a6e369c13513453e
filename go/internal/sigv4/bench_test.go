package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkVerifyHeaderAuth verifies the published GET example as the
// proxy verifies every request: the client's signing key for the day is
// cached, derived once per (secret, date, region, service).
func BenchmarkVerifyHeaderAuth(b *testing.B) {
	r := exampleRequest("GET", "/test.txt", map[string]string{"Range": "bytes=0-9", "X-Amz-Content-Sha256": EmptySHA256},
		"host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	a, err := ParseHeaderAuth(r)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(func() time.Time { return exampleTime })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyHeaderAuth(r, queryOf(r), a, exampleSecret); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveSigningKey is what the signing-key cache saves on each
// request after a client's first of the day.
func BenchmarkDeriveSigningKey(b *testing.B) {
	scope := Scope{Date: "20130524", Region: "us-east-1", Service: "s3"}
	b.ReportAllocs()
	for b.Loop() {
		DeriveSigningKey(exampleSecret, scope)
	}
}

// BenchmarkHeaderAuthPath is the whole verification of a header-signed GET
// as the proxy runs it: parse, the checks that need no secret, then the
// signature with the client's secret.
func BenchmarkHeaderAuthPath(b *testing.B) {
	r := exampleRequest("GET", "/test.txt", map[string]string{"Range": "bytes=0-9", "X-Amz-Content-Sha256": EmptySHA256},
		"host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	v := NewVerifier(func() time.Time { return exampleTime })
	q := queryOf(r)
	b.ReportAllocs()
	for b.Loop() {
		a, err := ParseHeaderAuth(r)
		if err == nil {
			err = v.AdmitHeaderAuth(r, &a)
		}
		if err == nil {
			_, err = v.VerifyHeaderAuth(r, q, a, exampleSecret)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPresignedPath is the whole verification of the published
// presigned GET, as the proxy runs it: parse the query once, the
// parameters, the checks that need no secret, then the signature.
func BenchmarkPresignedPath(b *testing.B) {
	r := httptest.NewRequest("GET", examplePresigned, nil)
	v := NewVerifier(func() time.Time { return exampleTime })
	b.ReportAllocs()
	for b.Loop() {
		q, err := ParseQuery(r.URL.RawQuery)
		if err != nil {
			b.Fatal(err)
		}
		a, err := ParsePresigned(q.Values)
		if err == nil {
			err = v.AdmitPresigned(r, &a)
		}
		if err == nil {
			err = v.VerifyPresigned(r, q, a, exampleSecret)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyChunk is one chunk signature of an aws-chunked upload
// (its data already hashed), as the decoder checks each: a chain of 64
// chunks, started afresh every 64.
func BenchmarkVerifyChunk(b *testing.B) {
	v := NewVerifier(nil)
	cred := Credential{Scope: Scope{Date: "20130524", Region: "us-east-1", Service: "s3"}, AmzDate: exampleDate}
	seed := strings.Repeat("5e", 32)
	data := sha256.Sum256([]byte("chunk"))
	// The chain's signatures, as an independent signer computes them.
	mac := hmac.New(sha256.New, DeriveSigningKey(exampleSecret, cred.Scope))
	sigs := make([]string, 64)
	previous := seed
	for i := range sigs {
		mac.Reset()
		mac.Write([]byte("AWS4-HMAC-SHA256-PAYLOAD\n" + exampleDate + "\n" + cred.Scope.String() + "\n" + previous + "\n" + EmptySHA256 + "\n" + hex.EncodeToString(data[:])))
		sigs[i] = hex.EncodeToString(mac.Sum(nil))
		previous = sigs[i]
	}
	var chain *ChunkChain
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i%len(sigs) == 0 {
			chain = v.NewChunkChain(exampleSecret, cred, seed)
		}
		if !chain.VerifyChunk(data[:], sigs[i%len(sigs)]) {
			b.Fatalf("chunk %d does not verify", i%len(sigs))
		}
		i++
	}
}
