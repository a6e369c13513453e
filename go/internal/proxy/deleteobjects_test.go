package proxy

import (
	"crypto/md5" //nolint:gosec // S3's Content-MD5
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/s3err"
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
		if _, err := parseDelete([]byte(body)); s3err.As(err).Code != "MalformedXML" {
			t.Errorf("%s: %v, want MalformedXML", name, err)
		}
	}
}

func TestCheckDeleteDigests(t *testing.T) {
	body := []byte("<Delete><Object><Key>k</Key></Object></Delete>")
	sum := md5.Sum(body) //nolint:gosec // S3's Content-MD5
	goodMD5 := base64.StdEncoding.EncodeToString(sum[:])
	crc := crc32.ChecksumIEEE(body)
	goodCRC := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
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
		{"unsupported algorithm", http.Header{"Content-Md5": {goodMD5}, "X-Amz-Checksum-Xxhash64": {"AAAAAAAAAAA="}}, "", "InvalidRequest"},
	}
	for _, c := range cases {
		_, err := checkDeleteDigests(c.header, body, c.trailer)
		if got := s3err.As(err).Code; (err == nil) != (c.code == "") || (err != nil && got != c.code) {
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
