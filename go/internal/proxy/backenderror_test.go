package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func backendAnswer(status int, body io.Reader) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"X-Amz-Request-Id": {"HDRID"}}, Body: io.NopCloser(body)}
}

// TestJudgeBackendErrorPassesOthersWhole: an answer that is not an
// authentication error reaches the client byte for byte, however long,
// and a read error after the judged part still reaches whoever reads on.
func TestJudgeBackendErrorPassesOthersWhole(t *testing.T) {
	long := "<Error><Code>InvalidArgument</Code><Message>" + strings.Repeat("m", 3*maxBackendErrorBody) + "</Message></Error>"
	resp := backendAnswer(http.StatusBadRequest, strings.NewReader(long))
	if refusal := judgeBackendError(resp); refusal != nil {
		t.Fatalf("InvalidArgument judged an authentication error: %v", refusal)
	}
	if got, err := io.ReadAll(resp.Body); err != nil || string(got) != long {
		t.Fatalf("passed on %d of %d bytes, %v", len(got), len(long), err)
	}

	cut := errors.New("backend went away")
	resp = backendAnswer(http.StatusBadRequest, io.MultiReader(strings.NewReader("<Error><Code>InvalidArgument"), errReader{cut}))
	if refusal := judgeBackendError(resp); refusal != nil {
		t.Fatalf("judged %v", refusal)
	}
	if got, err := io.ReadAll(resp.Body); !errors.Is(err, cut) || string(got) != "<Error><Code>InvalidArgument" {
		t.Fatalf("got %q, %v; want the bytes then the read error", got, err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestJudgeBackendErrorHides: what is hidden, and what the log keeps of it.
func TestJudgeBackendErrorHides(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	cases := []struct {
		name        string
		status      int
		body        string
		code, reqID string
	}{
		{"aws signature", 403, "<Error><Code>SignatureDoesNotMatch</Code><Message>m</Message><AWSAccessKeyId>AK</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n</StringToSign><SignatureProvided>" + sig + "</SignatureProvided><RequestId>R1</RequestId></Error>", "SignatureDoesNotMatch", "R1"},
		{"any 401", 401, "not even xml", "", "HDRID"},
		{"ibm json", 401, `{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found","context":{"requestId":"ibm-1"}}`, "BXNIM0415E", "ibm-1"},
		{"400 token", 400, "<Error><Code>ExpiredToken</Code><Message>old</Message></Error>", "ExpiredToken", "HDRID"},
		{"400 with details", 400, "<Error><Code>Odd</Code><CanonicalRequest>GET</CanonicalRequest></Error>", "Odd", "HDRID"},
		{"403 of any code", 403, "<Error><Code>WhoKnows</Code></Error>", "WhoKnows", "HDRID"},
		{"control characters", 403, "<Error><Code>A&#xA;B</Code></Error>", "A B", "HDRID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			refusal := judgeBackendError(backendAnswer(c.status, strings.NewReader(c.body)))
			if refusal == nil {
				t.Fatal("passed on")
			}
			if refusal.status != c.status || refusal.code != c.code || refusal.requestID != c.reqID {
				t.Fatalf("got %+v", refusal)
			}
			text := refusal.Error()
			for _, secret := range []string{"StringToSign", "AWS4-HMAC-SHA256", sig, "AK<", "CanonicalRequest"} {
				if strings.Contains(text, secret) {
					t.Fatalf("the log would keep %q: %s", secret, text)
				}
			}
		})
	}
	// An archived object's 403 is the client's to see.
	body := "<Error><Code>InvalidObjectState</Code><Message>restore it</Message></Error>"
	resp := backendAnswer(403, strings.NewReader(body))
	if refusal := judgeBackendError(resp); refusal != nil {
		t.Fatalf("InvalidObjectState hidden: %v", refusal)
	}
	if got, _ := io.ReadAll(resp.Body); !bytes.Equal(got, []byte(body)) {
		t.Fatalf("passed on %q", got)
	}
}
