package proxy

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/s3op"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// newListingBackend serves ListBuckets in pages of two names (S3's
// continuation-token paging), checking the proxy's signature; it counts
// the listings it answers.
func newListingBackend(t *testing.T, names ...string) (*httptest.Server, *atomic.Int32) {
	var lists atomic.Int32
	verifier := sigv4.NewVerifier(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := sigv4.ParseHeaderAuth(r)
		if err == nil {
			_, err = verifier.VerifyHeaderAuth(r, queryOf(r), a, backendSecret)
		}
		if err != nil || r.URL.Path != "/" || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<Error><Code>SignatureDoesNotMatch</Code><StringToSign>secret-ish</StringToSign></Error>")
			return
		}
		start := 0
		if token := r.URL.Query().Get("continuation-token"); token != "" {
			_, _ = fmt.Sscanf(token, "page-%d", &start)
		} else {
			lists.Add(1)
		}
		var b strings.Builder
		b.WriteString(`<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Buckets>`)
		end := min(start+2, len(names))
		for _, name := range names[start:end] {
			fmt.Fprintf(&b, "<Bucket><Name>%s</Name><CreationDate>2024-01-02T03:04:05.000Z</CreationDate></Bucket>", name)
		}
		b.WriteString("</Buckets>")
		if end < len(names) {
			fmt.Fprintf(&b, "<ContinuationToken>page-%d</ContinuationToken>", end)
		}
		b.WriteString("</ListAllMyBucketsResult>")
		_, _ = io.WriteString(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return srv, &lists
}

func listedNames(t *testing.T, resp *http.Response) []string {
	t.Helper()
	var result struct {
		Buckets []struct{ Name, CreationDate string } `xml:"Buckets>Bucket"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ListBuckets: %d %s", resp.StatusCode, body)
	}
	if err := xml.Unmarshal(body, &result); err != nil {
		t.Fatalf("ListBuckets body: %v: %q", err, body)
	}
	var names []string
	for _, b := range result.Buckets {
		names = append(names, b.Name)
	}
	return names
}

func TestListBucketsMergesPatternStores(t *testing.T) {
	// One store lists everything (in pages); a second store (another
	// address of the same server) serves only the longer pattern.
	srv, lists := newListingBackend(t, "a-1", "a-2", "a-exact", "a-x-1", "b-1", "bad name", "a-denied")
	main := backendBucket(t, srv, config.PathStyle)
	other := *main
	other.Host = "localhost"
	twin := *main // the same store under a second pattern: listed once
	buckets := map[string]*config.Bucket{
		"a-*":     main,
		"a-den*":  &twin,
		"a-x-*":   &other,
		"a-exact": main,
		"z-only":  main,
	}
	h := newTestHandler(t, buckets, func(_ context.Context, a s3op.Access) (bool, error) {
		return a.Bucket != "a-denied", nil
	})
	got := listedNames(t, do(t, h, http.MethodGet, "/", "", nil, clientSecret))
	want := []string{"a-1", "a-2", "a-exact", "a-x-1", "z-only"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("listed %q, want %q", got, want)
	}
	if n := lists.Load(); n != 2 {
		t.Errorf("the backend was listed %d times, want 2 (two stores)", n)
	}
	// A prefix that no pattern's bucket can have asks no store.
	got = listedNames(t, do(t, h, http.MethodGet, "/?prefix=z-", "", nil, clientSecret))
	if strings.Join(got, " ") != "z-only" || lists.Load() != 2 {
		t.Fatalf("prefix z-: listed %q after %d listings", got, lists.Load())
	}
}

func TestListBucketsFailsWhenAStoreCannotList(t *testing.T) {
	srv, _ := newListingBackend(t, "a-1")
	wrong := backendBucket(t, srv, config.PathStyle)
	wrong.SecretKey = "not-the-backend-secret"
	h := newTestHandler(t, map[string]*config.Bucket{"a-*": wrong, "exact": backendBucket(t, srv, config.PathStyle)}, nil)
	resp := do(t, h, http.MethodGet, "/", "", nil, clientSecret)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "<Code>BadGateway</Code>") || !strings.Contains(string(body), "a-*") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "secret-ish") || strings.Contains(string(body), "SignatureDoesNotMatch") {
		t.Fatalf("the backend's words reached the client: %s", body)
	}
}

func TestPatternServesRequestsAndLabelsThem(t *testing.T) {
	srv, last := newBackend(t)
	h := newTestHandler(t, map[string]*config.Bucket{"team-a-*": backendBucket(t, srv, config.PathStyle)}, nil)
	resp := do(t, h, http.MethodGet, "/team-a-x/key", "", nil, clientSecret)
	if resp.StatusCode != http.StatusOK || last.Load() == nil || last.Load().escapedPath != "/team-a-x/key" {
		t.Fatalf("got %d, backend saw %+v", resp.StatusCode, last.Load())
	}
	for _, path := range []string{"/team-b-x/key", "/team-a/key", "/TEAM-A-x/key"} {
		if resp := do(t, h, http.MethodGet, path, "", nil, clientSecret); errorCode(t, resp) != "NoSuchBucket" {
			t.Errorf("%s: want NoSuchBucket", path)
		}
	}
	for bucket, want := range map[string]string{"team-a-x": "team-a-*", "team-b": "_unknown", "": ""} {
		entry, ok := h.buckets.Lookup(bucket)
		if got := bucketLabel(bucket, entry, ok); got != want {
			t.Errorf("label of %q = %q, want %q", bucket, got, want)
		}
	}
}
