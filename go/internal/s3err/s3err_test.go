package s3err

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteDetails(t *testing.T) {
	e := New(ErrInvalidAccessKeyID).With("AWSAccessKeyId", "AK<&>")
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodGet, "/", nil), e, "RID")
	body := w.Body.String()
	if w.Code != http.StatusForbidden || !strings.Contains(body, "<AWSAccessKeyId>AK&lt;&amp;&gt;</AWSAccessKeyId>") ||
		!strings.Contains(body, "<RequestId>RID</RequestId>") ||
		!strings.Contains(body, "<Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message>") {
		t.Fatalf("%d %s", w.Code, body)
	}
	if len(New(ErrAccessDenied).Details) != 0 || len(e.With("A", "b").Details) != 2 || len(e.Details) != 1 {
		t.Fatal("With must copy")
	}
}

// Every code has its row: the word S3 writes, an error status, a message.
func TestEveryCodeIsDefined(t *testing.T) {
	words := map[string]Code{}
	for c := Code(1); c < numCodes; c++ {
		word, status, message := c.String(), c.Status(), c.Message()
		if word == "" || status < 400 || status > 599 || message == "" {
			t.Errorf("code %d: word %q, status %d, message %q", c, word, status, message)
		}
		if other, seen := words[word]; seen {
			t.Errorf("codes %d and %d are both %s", other, c, word)
		}
		words[word] = c
	}
	if Code(0).String() != "" || numCodes.String() != "" {
		t.Error("only the named codes have a word")
	}
}

func TestNewfAndWrap(t *testing.T) {
	e := Newf(ErrInvalidArgument, "bad %s", "x")
	if e.Code != ErrInvalidArgument || e.Status() != http.StatusBadRequest || e.Message != "bad x" {
		t.Fatal(e)
	}
	cause := http.ErrBodyNotAllowed
	w := Wrap(cause, ErrSlowDown)
	if w.Unwrap() != cause || w.Message != "Please reduce your request rate." || w.Status() != http.StatusServiceUnavailable {
		t.Fatal(w)
	}
	if !Is(w, ErrSlowDown) || Is(w, ErrServiceUnavailable) || Is(cause, ErrSlowDown) {
		t.Fatal("Is")
	}
	if a := As(cause); a.Code != ErrInternalError || a.Status() != http.StatusInternalServerError || a.Unwrap() != cause {
		t.Fatal(a)
	}
}
