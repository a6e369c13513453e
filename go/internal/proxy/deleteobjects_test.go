package proxy

import (
	"context"
	"crypto/md5" //nolint:gosec // S3's Content-MD5
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/object-storage-proxy/osp/internal/authz"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
	"github.com/object-storage-proxy/osp/internal/sigv4"
	"github.com/object-storage-proxy/osp/internal/upstream"
)

func TestParseDelete(t *testing.T) {
	req, err := parseDelete([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>
  <Object><Key>a &amp; &lt;b&gt;</Key><VersionId>v1</VersionId></Object>
  <!-- between elements -->
  <Object><Key><![CDATA[c&d]]></Key></Object>
  <Object><Key>ü/&#x1F600;</Key><ETag>"e"</ETag><Size>3</Size></Object>
</Delete>
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []deleteObject{{key: "a & <b>", versionID: "v1"}, {key: "c&d"}, {key: "ü/😀", eTag: `"e"`, size: "3"}}
	if req.quiet != "true" || fmt.Sprint(req.objects) != fmt.Sprint(want) {
		t.Fatalf("parsed %+v", req)
	}
	// The rewrite reads back as the same objects.
	again, err := parseDelete(req.rewrite(req.objects[1:]))
	if err != nil || again.quiet != "true" || fmt.Sprint(again.objects) != fmt.Sprint(want[1:]) {
		t.Fatalf("rewrite read back as %+v, %v", again, err)
	}
}

// TestParseDeleteRefuses: anything two XML parsers might read as different
// keys, or that S3 refuses, is MalformedXML.
func TestParseDeleteRefuses(t *testing.T) {
	many := "<Delete>" + strings.Repeat("<Object><Key>k</Key></Object>", maxDeleteKeys+1) + "</Delete>"
	for name, body := range map[string]string{
		"empty":              ``,
		"not xml":            `hello`,
		"no objects":         `<Delete></Delete>`,
		"other root":         `<Deletes><Object><Key>k</Key></Object></Deletes>`,
		"unclosed":           `<Delete><Object><Key>k</Key></Object>`,
		"two keys":           `<Delete><Object><Key>incoming/a</Key><Key>other/secret</Key></Object></Delete>`,
		"two quiet":          `<Delete><Quiet>true</Quiet><Quiet>false</Quiet><Object><Key>k</Key></Object></Delete>`,
		"bad quiet":          `<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>`,
		"no key":             `<Delete><Object><VersionId>v</VersionId></Object></Delete>`,
		"empty key":          `<Delete><Object><Key></Key></Object></Delete>`,
		"unknown field":      `<Delete><Object><Key>k</Key><Bogus/></Object></Delete>`,
		"unknown child":      `<Delete><Bogus/><Object><Key>k</Key></Object></Delete>`,
		"nested in key":      `<Delete><Object><Key>a<b/>c</Key></Object></Delete>`,
		"comment in key":     `<Delete><Object><Key>incom<!-- x -->ing/a</Key></Object></Delete>`,
		"text between":       `<Delete>junk<Object><Key>k</Key></Object></Delete>`,
		"second root":        `<Delete><Object><Key>a</Key></Object></Delete><Delete><Object><Key>b</Key></Object></Delete>`,
		"trailing text":      `<Delete><Object><Key>a</Key></Object></Delete>junk`,
		"doctype":            `<!DOCTYPE d [<!ENTITY x "other/secret">]><Delete><Object><Key>&x;</Key></Object></Delete>`,
		"undefined entity":   `<Delete><Object><Key>&x;</Key></Object></Delete>`,
		"other namespace":    `<Delete xmlns="urn:x"><Object><Key>k</Key></Object></Delete>`,
		"invalid utf-8":      "<Delete><Object><Key>\xff</Key></Object></Delete>",
		"control char":       "<Delete><Object><Key>&#x1;</Key></Object></Delete>",
		"over 1000 objects":  many,
		"object outside":     `<Object><Key>k</Key></Object>`,
		"key outside object": `<Delete><Key>k</Key></Delete>`,
	} {
		if _, err := parseDelete([]byte(body)); s3err.As(err).Code.String() != "MalformedXML" {
			t.Errorf("%s: %v, want MalformedXML", name, err)
		}
	}
}

func TestCheckDeleteDigests(t *testing.T) {
	body := []byte("<Delete><Object><Key>k</Key></Object></Delete>")
	sum := md5.Sum(body) //nolint:gosec // S3's Content-MD5
	goodMD5 := base64.StdEncoding.EncodeToString(sum[:])
	goodCRC := crc32Of(string(body))
	cases := []struct {
		name    string
		header  http.Header
		trailer string
		code    string // "" for accepted
	}{
		{"md5", http.Header{"Content-Md5": {goodMD5}}, "", ""},
		{"crc32", http.Header{"X-Amz-Checksum-Crc32": {goodCRC}}, "", ""},
		{"trailer", http.Header{}, "x-amz-checksum-crc32", ""},
		{"none", http.Header{}, "", "InvalidRequest"},
		{"only the algorithm", http.Header{"X-Amz-Sdk-Checksum-Algorithm": {"CRC32"}, "X-Amz-Checksum-Type": {"FULL_OBJECT"}}, "", "InvalidRequest"},
		{"wrong md5", http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(make([]byte, 16))}}, "", "BadDigest"},
		{"malformed md5", http.Header{"Content-Md5": {"not base64"}}, "", "InvalidDigest"},
		{"two md5", http.Header{"Content-Md5": {goodMD5, goodMD5}}, "", "InvalidDigest"},
		{"wrong crc32", http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, "", "BadDigest"},
		{"good md5, wrong crc32", http.Header{"Content-Md5": {goodMD5}, "X-Amz-Checksum-Crc32": {"AAAAAA=="}}, "", "BadDigest"},
		{"malformed crc32", http.Header{"X-Amz-Checksum-Crc32": {"AAAA"}}, "", "InvalidRequest"},
		{"unsupported algorithm", http.Header{"Content-Md5": {goodMD5}, "X-Amz-Checksum-Md4": {"AAAAAAAAAAAAAAAAAAAAAA=="}}, "", "InvalidRequest"},
		{"wrong xxhash64 (an algorithm S3 added in 2025)", http.Header{"Content-Md5": {goodMD5}, "X-Amz-Checksum-Xxhash64": {"AAAAAAAAAAA="}}, "", "BadDigest"},
	}
	for _, c := range cases {
		_, err := checkDeleteDigests(c.header, body, c.trailer)
		if got := s3err.As(err).Code.String(); (err == nil) != (c.code == "") || (err != nil && got != c.code) {
			t.Errorf("%s: %v, want %q", c.name, err, c.code)
		}
	}
}

// TestDeleteDigestsForRewrittenBody: the backend gets digests of the body
// it receives, in the algorithms the client used, a trailer's as a header.
func TestDeleteDigestsForRewrittenBody(t *testing.T) {
	body := []byte("<Delete><Object><Key>k</Key></Object></Delete>")
	sums := deleteChecksums{md5: true, checksums: []string{"x-amz-checksum-sha256"}, trailer: "x-amz-checksum-crc32c"}
	h := sums.headersFor(body)
	if _, err := checkDeleteDigests(h, body, ""); err != nil {
		t.Fatalf("headers %v do not verify: %v", h, err)
	}
	for _, name := range []string{"Content-Md5", "X-Amz-Checksum-Sha256", "X-Amz-Checksum-Crc32c"} {
		if h.Get(name) == "" {
			t.Errorf("no %s in %v", name, h)
		}
	}
}

func TestDeleteResult(t *testing.T) {
	entries, err := deleteResultEntries([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>a&amp;b</Key></Deleted><Error><Key>c</Key><Code>InternalError</Code><Message>m</Message></Error></DeleteResult>`), false)
	if err != nil {
		t.Fatal(err)
	}
	got := string(deleteResult(entries, []deleteObject{{key: "x<y", versionID: "v"}}))
	want := xmlHeaderless(`<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>a&amp;b</Key></Deleted><Error><Key>c</Key><Code>InternalError</Code><Message>m</Message></Error>` +
		`<Error><Key>x&lt;y</Key><VersionId>v</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>`)
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	quiet, err := deleteResultEntries([]byte(`<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>c</Key></Error></DeleteResult>`), true)
	if err != nil || string(quiet) != "<Error><Key>c</Key></Error>" {
		t.Fatalf("quiet: %s, %v", quiet, err)
	}
	if _, err := deleteResultEntries([]byte(`<Error><Code>AccessDenied</Code></Error>`), false); err == nil {
		t.Fatal("an S3 error document read as a DeleteResult")
	}
}

func xmlHeaderless(s string) string { return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + s }

// deleteBackend answers DeleteObjects as S3 does, deleting every key named,
// after checking the signature, the payload hash and the body's digests;
// it records each request it got.
func deleteBackend(t *testing.T) (*httptest.Server, func() []*seen) {
	var (
		mu  sync.Mutex
		got []*seen
	)
	verifier := sigv4.NewVerifier(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &seen{method: r.Method, rawQuery: r.URL.RawQuery, header: r.Header.Clone()}
		s.body, _ = io.ReadAll(r.Body)
		// Recorded once answered (a deferred call), under mu: the test reads
		// it after the answer, which the race detector cannot see as an order.
		defer func() {
			mu.Lock()
			got = append(got, s)
			mu.Unlock()
		}()
		a, err := sigv4.ParseHeaderAuth(r)
		if err == nil {
			_, err = verifier.VerifyHeaderAuth(r, queryOf(r), a, backendSecret)
		}
		sum := sha256.Sum256(s.body)
		if err == nil && hex.EncodeToString(sum[:]) != string(a.Payload) {
			err = errors.New("body does not match the payload hash")
		}
		if err == nil {
			_, err = checkDeleteDigests(r.Header, s.body, "")
		}
		var req deleteRequest
		if err == nil {
			req, err = parseDelete(s.body)
		}
		if err != nil {
			s.sigErr = err
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><DeleteResult>`)
		for _, o := range req.objects {
			b.WriteString("<Deleted><Key>")
			_ = xml.EscapeText(&b, []byte(o.key))
			b.WriteString("</Key></Deleted>")
		}
		b.WriteString("</DeleteResult>")
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return srv, func() []*seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]*seen(nil), got...)
	}
}

// keyAwareHandler has a key-aware validator that allows DeleteObjects and
// each key under incoming/.
func keyAwareHandler(t *testing.T, srv *httptest.Server) *Handler {
	transport := upstream.New(upstream.Options{ResponseHeaderTimeout: time.Minute})
	t.Cleanup(transport.Close)
	validate := func(_ context.Context, a s3op.Access) (bool, error) {
		return a.Operation == "DeleteObjects" || strings.HasPrefix(a.Key, "incoming/"), nil
	}
	return New(Options{
		Buckets:       map[string]*config.Bucket{"bkt": backendBucket(t, srv, config.PathStyle)},
		ClientSecrets: creds.NewClientSecrets(map[string]string{clientKey: clientSecret}, nil, 64),
		BackendCreds:  creds.NewBackendCreds(nil, false, 64),
		Authorizer:    authz.New(validate, true, 64),
		Transport:     transport,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func contentMD5(body string) string {
	sum := md5.Sum([]byte(body)) //nolint:gosec // S3's Content-MD5
	return base64.StdEncoding.EncodeToString(sum[:])
}

func crc32Of(body string) string {
	c := crc32.ChecksumIEEE([]byte(body))
	return base64.StdEncoding.EncodeToString([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
}

// readResult is the Deleted keys and Error keys of a DeleteResult.
func readResult(t *testing.T, resp *http.Response) (deleted, denied []string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var result struct {
		Deleted []struct{ Key string }
		Error   []struct{ Key, Code string }
	}
	if err := xml.Unmarshal(body, &result); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, d := range result.Deleted {
		deleted = append(deleted, d.Key)
	}
	for _, e := range result.Error {
		if e.Code != "AccessDenied" {
			t.Fatalf("error %s for %s", e.Code, e.Key)
		}
		denied = append(denied, e.Key)
	}
	return deleted, denied
}

const mixedDelete = `<Delete><Object><Key>incoming/a</Key></Object><Object><Key>other/secret</Key></Object><Object><Key>incoming/b&amp;c</Key></Object></Delete>`

func TestDeleteObjectsRewritesWithNewDigests(t *testing.T) {
	srv, got := deleteBackend(t)
	h := keyAwareHandler(t, srv)
	resp := do(t, h, "POST", "/bkt?delete", mixedDelete, map[string]string{"Content-MD5": contentMD5(mixedDelete), "X-Amz-Checksum-Crc32": crc32Of(mixedDelete)}, clientSecret)
	deleted, denied := readResult(t, resp)
	if fmt.Sprint(deleted) != "[incoming/a incoming/b&c]" || fmt.Sprint(denied) != "[other/secret]" {
		t.Fatalf("deleted %v, denied %v", deleted, denied)
	}
	if len(got()) != 1 || got()[0].sigErr != nil {
		t.Fatalf("backend got %d requests: %+v", len(got()), got())
	}
	if b := string(got()[0].body); strings.Contains(b, "other/secret") {
		t.Fatalf("the backend was asked to delete a denied key: %s", b)
	}
}

func TestDeleteObjectsAllAllowedForwardsTheClientsBody(t *testing.T) {
	srv, got := deleteBackend(t)
	h := keyAwareHandler(t, srv)
	body := `<Delete><Object><Key>incoming/a</Key></Object></Delete>`
	deleted, denied := readResult(t, do(t, h, "POST", "/bkt?delete", body, map[string]string{"Content-MD5": contentMD5(body)}, clientSecret))
	if fmt.Sprint(deleted) != "[incoming/a]" || denied != nil || len(got()) != 1 || string(got()[0].body) != body {
		t.Fatalf("deleted %v, denied %v, backend %+v", deleted, denied, got())
	}
}

func TestDeleteObjectsAllDeniedNeverReachesTheBackend(t *testing.T) {
	srv, got := deleteBackend(t)
	h := keyAwareHandler(t, srv)
	body := `<Delete><Quiet>true</Quiet><Object><Key>other/a</Key><VersionId>v1</VersionId></Object></Delete>`
	deleted, denied := readResult(t, do(t, h, "POST", "/bkt?delete", body, map[string]string{"Content-MD5": contentMD5(body)}, clientSecret))
	if deleted != nil || fmt.Sprint(denied) != "[other/a]" || len(got()) != 0 {
		t.Fatalf("deleted %v, denied %v, backend got %d requests", deleted, denied, len(got()))
	}
}

// TestDeleteObjectsAWSChunked: an aws-chunked body with a checksum trailer
// is decoded and verified; the backend gets the allowed keys as a plain
// body with the trailer's algorithm as a header.
func TestDeleteObjectsAWSChunked(t *testing.T) {
	srv, got := deleteBackend(t)
	h := keyAwareHandler(t, srv)
	chunked := func(trailerValue string) string {
		return fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(mixedDelete), mixedDelete, trailerValue)
	}
	headers := map[string]string{
		"X-Amz-Content-Sha256":         string(sigv4.StreamingUnsignedTrailer),
		"Content-Encoding":             "aws-chunked",
		"X-Amz-Decoded-Content-Length": strconv.Itoa(len(mixedDelete)),
		"X-Amz-Trailer":                "x-amz-checksum-crc32",
	}
	deleted, denied := readResult(t, do(t, h, "POST", "/bkt?delete", chunked(crc32Of(mixedDelete)), headers, clientSecret))
	if fmt.Sprint(deleted) != "[incoming/a incoming/b&c]" || fmt.Sprint(denied) != "[other/secret]" {
		t.Fatalf("deleted %v, denied %v", deleted, denied)
	}
	sent := got()[0]
	if sent.sigErr != nil || sent.header.Get("X-Amz-Checksum-Crc32") == "" || sent.header.Get("X-Amz-Trailer") != "" ||
		sent.header.Get("Content-Encoding") != "" || sent.header.Get("X-Amz-Decoded-Content-Length") != "" {
		t.Fatalf("backend got %+v", sent)
	}
	resp := do(t, h, "POST", "/bkt?delete", chunked(crc32Of("other")), headers, clientSecret)
	if code := errorCode(t, resp); code != "BadDigest" || len(got()) != 1 {
		t.Fatalf("a wrong trailer checksum: %s, backend got %d requests", code, len(got()))
	}
}

// FuzzParseDelete: a body parseDelete accepts names the same keys to
// encoding/xml's ordinary decoding (as a Go S3 server such as versitygw
// reads it), and its rewrite reads back as the same objects: what the
// validator is asked about is what the backend deletes.
func FuzzParseDelete(f *testing.F) {
	f.Add(mixedDelete)
	f.Add(`<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a&amp;b</Key><VersionId>v</VersionId></Object></Delete>`)
	f.Add(`<Delete><Object><Key>incoming/a</Key><Key>other/secret</Key></Object></Delete>`)
	f.Add(`<Delete><Object><Key><![CDATA[x]]>y</Key></Object><!-- c --></Delete>`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parseDelete([]byte(body))
		if err != nil {
			if code := s3err.As(err).Code.String(); code != "MalformedXML" {
				t.Fatalf("refused with %s", code)
			}
			return
		}
		var plain struct {
			Quiet  string
			Object []struct{ Key, VersionId string }
		}
		if err := xml.Unmarshal([]byte(body), &plain); err != nil {
			t.Fatalf("accepted a body encoding/xml refuses: %v", err)
		}
		if len(plain.Object) != len(req.objects) || plain.Quiet != req.quiet {
			t.Fatalf("%d objects, encoding/xml reads %d", len(req.objects), len(plain.Object))
		}
		for i, o := range plain.Object {
			if o.Key != req.objects[i].key || o.VersionId != req.objects[i].versionID {
				t.Fatalf("object %d: %q/%q, encoding/xml reads %q/%q", i, req.objects[i].key, req.objects[i].versionID, o.Key, o.VersionId)
			}
		}
		again, err := parseDelete(req.rewrite(req.objects))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(req) {
			t.Fatalf("rewrite read back as %+v, %v; want %+v", again, err, req)
		}
	})
}
