package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLocationRewriter(t *testing.T) {
	const loc = "http://proxy:8080/b/k%20x&amp;y"
	for _, c := range []struct{ name, in, want string }{
		{
			name: "the backend's URL is replaced",
			in:   `<?xml version="1.0"?>` + "\n   \n" + `<CompleteMultipartUploadResult><Location>http://10.0.0.5:7070/b/k</Location><Bucket>b</Bucket></CompleteMultipartUploadResult>`,
			want: `<?xml version="1.0"?>` + "\n   \n" + `<CompleteMultipartUploadResult><Location>` + loc + `</Location><Bucket>b</Bucket></CompleteMultipartUploadResult>`,
		},
		{
			name: "an error in a 200 answer passes unchanged",
			in:   `   <Error><Code>InternalError</Code></Error>`,
			want: `   <Error><Code>InternalError</Code></Error>`,
		},
		{
			name: "an element never closed passes unchanged",
			in:   `<R><Location>http://x/`,
			want: `<R><Location>http://x/`,
		},
		{
			name: "only the first Location",
			in:   `<Location>a</Location><Location>b</Location>`,
			want: `<Location>` + loc + `</Location><Location>b</Location>`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			// One byte per read: "<Location>" split every way.
			got, err := io.ReadAll(newLocationRewriter(iotest.OneByteReader(strings.NewReader(c.in)), []byte(loc)))
			if err != nil || string(got) != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
			got, err = io.ReadAll(newLocationRewriter(strings.NewReader(c.in), []byte(loc)))
			if err != nil || string(got) != c.want {
				t.Fatalf("whole: got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestClientLocation(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "http://proxy.example:9000/b/a%20b&c?uploadId=1", nil)
	if got := string(clientLocation(r, "http")); got != "http://proxy.example:9000/b/a%20b&amp;c" {
		t.Fatalf("got %q", got)
	}
}
