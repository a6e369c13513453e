package s3err

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteDetails(t *testing.T) {
	e := New("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.").
		With("AWSAccessKeyId", "AK<&>")
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodGet, "/", nil), e, "RID")
	body := w.Body.String()
	if w.Code != http.StatusForbidden || !strings.Contains(body, "<AWSAccessKeyId>AK&lt;&amp;&gt;</AWSAccessKeyId>") ||
		!strings.Contains(body, "<RequestId>RID</RequestId>") {
		t.Fatalf("%d %s", w.Code, body)
	}
	if len(New("AccessDenied", "x").Details) != 0 || len(e.With("A", "b").Details) != 2 || len(e.Details) != 1 {
		t.Fatal("With must copy")
	}
}
