package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"

	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// An HMAC backend with upload_framing "plain" gets bodies it cannot check
// by hash as plain bytes of their decoded length, all of them only once the
// body verified: the client's signed hash goes as it came (the backend
// checks it), everything else with the last byte held back.

func unsignedRequest(body []byte, sent int) (*http.Request, authenticated) {
	r, _ := http.NewRequest(http.MethodPut, "http://proxy/b/k", nil)
	r.ContentLength = int64(len(body))
	r.Body = io.NopCloser(&sentBody{r: bytes.NewReader(body[:sent]), left: r.ContentLength})
	return r, authenticated{payload: sigv4.UnsignedPayload}
}

func TestPlainFramingSendsUnsignedBodiesPlainAndWhole(t *testing.T) {
	body := bytes.Repeat([]byte("plain body "), 1000)
	r, auth := unsignedRequest(body, len(body))
	u, err := planBody(r, auth, hashOnly)
	if err != nil || u == nil {
		t.Fatalf("plan %v, %v", u, err)
	}
	if u.framed || u.payload != sigv4.UnsignedPayload || u.contentLength != int64(len(body)) {
		t.Fatalf("want a plain UNSIGNED-PAYLOAD body of %d bytes, got %+v", len(body), u)
	}
	got, err := backendReads(u, 7)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("backend got %d bytes, %v", len(got), err)
	}
}

func TestPlainFramingNeverDeliversAllOfACutOffBody(t *testing.T) {
	body := bytes.Repeat([]byte("cut "), 4096)
	for _, sent := range []int{0, 1, len(body) / 2, len(body) - 1} {
		r, auth := unsignedRequest(body, sent)
		u, err := planBody(r, auth, hashOnly)
		if err != nil || u == nil {
			t.Fatalf("plan %v, %v", u, err)
		}
		got, err := backendReads(u, 4096)
		if err == nil || code(err) != "IncompleteBody" {
			t.Fatalf("sent %d of %d: want IncompleteBody, got %v", sent, len(body), err)
		}
		if len(got) >= sent && sent > 0 {
			t.Fatalf("sent %d of %d: the backend got %d bytes, the last one was not held back", sent, len(body), len(got))
		}
	}
}

func TestPlainFramingPassesASignedHashThrough(t *testing.T) {
	body := []byte("signed body")
	sum := sha256.Sum256(body)
	r, _ := http.NewRequest(http.MethodPut, "http://proxy/b/k", bytes.NewReader(body))
	u, err := planBody(r, authenticated{payload: sigv4.PayloadMode(hex.EncodeToString(sum[:]))}, hashOnly)
	if err != nil || u != nil {
		t.Fatalf("a signed hash goes as it came (the backend checks it): got %+v, %v", u, err)
	}
}

func TestPlainFramingDecodesAWSChunkedAndHoldsBackTheLastByte(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 2000)
	for _, mode := range []int{modeSigned, modeSignedTrailer, modeUnsignedTrailer} {
		good := fuzzUpload(mode, data, 8192)
		r, auth := bearerRequest(mode, good, int64(len(data)), "")
		u, err := planBody(r, auth, hashOnly)
		if err != nil || u == nil {
			t.Fatalf("mode %d: plan %v, %v", mode, u, err)
		}
		if u.framed || u.payload != sigv4.UnsignedPayload || u.contentLength != int64(len(data)) {
			t.Fatalf("mode %d: want plain decoded bytes, got %+v", mode, u)
		}
		if got, err := backendReads(u, 1000); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("mode %d: backend got %d bytes, %v", mode, len(got), err)
		}

		// The last data byte changed: the chunk signature or the trailer
		// checksum fails at the end, and the backend is a byte short.
		bad := bytes.Clone(good)
		i := bytes.LastIndex(bad, []byte("\r\n0")) - 1 // before the final chunk
		if bad[i] != data[len(data)-1] {
			t.Fatalf("mode %d: byte %d is not the last data byte", mode, i)
		}
		bad[i] ^= 1
		r, auth = bearerRequest(mode, bad, int64(len(data)), "")
		u, err = planBody(r, auth, hashOnly)
		if err != nil {
			t.Fatalf("mode %d: plan: %v", mode, err)
		}
		got, err := backendReads(u, 1000)
		if err == nil || int64(len(got)) >= u.contentLength {
			t.Fatalf("mode %d: a tampered body reached the backend whole (%d bytes, %v)", mode, len(got), err)
		}
	}
}

func TestDefaultFramingStillFramesUnsignedBodies(t *testing.T) {
	body := []byte("framed")
	r, auth := unsignedRequest(body, len(body))
	u, err := planBody(r, auth, hashAndFraming)
	if err != nil || u == nil || !u.framed || u.payload != sigv4.StreamingUnsignedTrailer {
		t.Fatalf("want the proxy's aws-chunked framing, got %+v, %v", u, err)
	}
}
