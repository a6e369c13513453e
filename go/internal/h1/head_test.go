package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/object-storage-proxy/osp/internal/fieldline"
)

var headSeeds = []string{
	"GET /b/k?x=1&y HTTP/1.1\r\nHost: a\r\nx-amz-date: 20260101T000000Z\r\nAUTHORIZATION: AWS4 x\r\n\r\n",
	"GET http://h:9000/b/k HTTP/1.1\r\nHost: other\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET *x HTTP/1.1\r\nHost: a\r\n\r\n",
	"PUT /b/k HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"PUT /b/k HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nhello",
	"PUT /b/k HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
	"PUT /b/k HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
	"PUT /b/k HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a:  2 \t\r\nX-Meta: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n X-A: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\nX-B: c\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"\r\n\r\n",
	"GET /b/k? HTTP/1.1\r\nHost: a\r\n\r\n",
	// More lines than fieldLines.header compares: a repeated name beyond.
	"GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\nX-E: 5\r\nX-F: 6\r\nX-G: 7\r\nX-H: 8\r\nX-I: 9\r\nX-J: 0\r\n", 5) + "X-Z: z\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\n" + strings.Repeat("X-A: 1\r\n", 40) + "Content-Length: 1\r\nHost: a\r\n\r\nx",
	"GET /b/k?x? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //b/k HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /b/a%20b HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /b/caf\xc3\xa9?x=\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /b/k?x=\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /b/k!*'() HTTP/1.1\r\nHost: a\r\n\r\n",
}

// FuzzParseHead holds parseHead to http.ReadRequest: on every head it
// takes, ReadRequest must succeed with the same request, consume the same
// bytes, read the same body, and checkRequest must judge both alike (the
// first without checking the fields again, as for a head parseHead took). The
// input as a whole is also a request target for checkOriginForm, and a
// field value that fieldline.ValidValue must judge as httpguts does.
func FuzzParseHead(f *testing.F) {
	// Request targets alone, for checkOriginForm.
	targets := []string{"0123456\t89abcdef\x7f", "abcdefgh\x1fxyz", "\x80\x9f\xff\xa0 ~!\"#$%&'()", "/b/k?x=1&y", "/b/k?", "/b/k?x?", "//b", "/b/%41", "/b/\xc3\xa9", "/b/k?\x7f", "/b/k!", "/*"}
	for _, seed := range append(append(headSeeds, fuzzSeeds...), targets...) {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		checkOriginForm(t, string(input))
		if got, want := fieldline.ValidValue(string(input)), httpguts.ValidHeaderFieldValue(string(input)); got != want {
			t.Fatalf("fieldline.ValidValue(%q) = %v; httpguts.ValidHeaderFieldValue says %v", input, got, want)
		}
		src := bytes.NewReader(input)
		ex := new(exchange)
		got := &ex.req
		hosts, n, ok := parseHead(input, src, ex)
		if !ok {
			return // left to http.ReadRequest
		}
		_, _ = src.Seek(int64(n), io.SeekStart)
		br := bufio.NewReader(bytes.NewReader(input))
		want, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("parseHead takes %q, http.ReadRequest refuses it: %v", input, err)
		}
		if diff := requestDiff(got, want); diff != "" {
			t.Fatalf("for %q, parseHead and http.ReadRequest differ in %s", input, diff)
		}
		gotBody, gotErr := io.ReadAll(got.Body)
		wantBody, wantErr := io.ReadAll(want.Body)
		if !bytes.Equal(gotBody, wantBody) || gotErr != wantErr {
			t.Fatalf("for %q, body %q, %v; http.ReadRequest's %q, %v", input, gotBody, gotErr, wantBody, wantErr)
		}
		gotRest, _ := io.ReadAll(src)
		wantRest, _ := io.ReadAll(br)
		if !bytes.Equal(gotRest, wantRest) {
			t.Fatalf("for %q, left %q; http.ReadRequest left %q", input, gotRest, wantRest)
		}
		gotCheck, wantCheck := checkRequest(got, hosts, true), checkRequest(want, hostLines(input), false)
		if !reflect.DeepEqual(gotCheck, wantCheck) {
			t.Fatalf("for %q, checkRequest says %v; after http.ReadRequest, %v", input, gotCheck, wantCheck)
		}
	})
}

// checkOriginForm holds parseOriginForm to url.ParseRequestURI for target:
// on every target it takes, the same URL.
func checkOriginForm(t *testing.T, target string) {
	var got url.URL
	if !parseOriginForm(target, &got) {
		return
	}
	want, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("parseOriginForm takes %q, url.ParseRequestURI refuses it: %v", target, err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("for %q, parseOriginForm gives %#v; url.ParseRequestURI %#v", target, got, *want)
	}
}

// requestDiff names the first field of the parsed request where got and
// want differ, with both values; "" if none does.
func requestDiff(got, want *http.Request) string {
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"Method", got.Method, want.Method},
		{"URL", got.URL, want.URL},
		{"RequestURI", got.RequestURI, want.RequestURI},
		{"Proto", got.Proto, want.Proto},
		{"ProtoMajor", got.ProtoMajor, want.ProtoMajor},
		{"ProtoMinor", got.ProtoMinor, want.ProtoMinor},
		{"Header", got.Header, want.Header},
		{"Host", got.Host, want.Host},
		{"ContentLength", got.ContentLength, want.ContentLength},
		{"TransferEncoding", got.TransferEncoding, want.TransferEncoding},
		{"Close", got.Close, want.Close},
		{"Trailer", got.Trailer, want.Trailer},
		{"Body is NoBody", got.Body == http.NoBody, want.Body == http.NoBody},
		{"Context", got.Context(), want.Context()},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			return fmt.Sprintf("%s: %+v vs %+v", f.name, f.got, f.want)
		}
	}
	return ""
}

// The heads of the requests the proxy serves most take the lean path: a
// regression that sent them all to http.ReadRequest would pass every other
// test.
func TestParseHeadTakesCommonRequests(t *testing.T) {
	for _, raw := range []string{
		"GET /bucket/key?versionId=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUser-Agent: Go-http-client/1.1\r\n" +
			"Authorization: AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00\r\n" +
			"X-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: 20260101T000000Z\r\nAccept-Encoding: gzip\r\n\r\n",
		"PUT /bucket/key HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
		"HEAD /bucket HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	} {
		if _, n, ok := parseHead([]byte(raw), strings.NewReader(""), new(exchange)); !ok || n != strings.Index(raw, "\r\n\r\n")+4 {
			t.Errorf("parseHead(%q) = %d, %v; want the head taken", raw, n, ok)
		}
	}
}
