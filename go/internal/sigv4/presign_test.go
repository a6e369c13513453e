package sigv4

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The presigned URL example of the Amazon S3 API reference ("Authenticating
// Requests: Using Query Parameters").
const examplePresigned = "http://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z" +
	"&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

func verifyPresigned(t *testing.T, rawURL string, now time.Time, secret string) error {
	t.Helper()
	r := httptest.NewRequest("GET", rawURL, nil)
	a, err := ParsePresigned(r.URL.Query())
	if err != nil {
		return err
	}
	return NewVerifier(func() time.Time { return now }).VerifyPresigned(r, queryOf(r), a, secret)
}

func TestPublishedPresignExample(t *testing.T) {
	if err := verifyPresigned(t, examplePresigned, exampleTime.Add(time.Hour), exampleSecret); err != nil {
		t.Fatalf("published example rejected: %v", err)
	}
	cases := []struct {
		name string
		url  string
		now  time.Time
		code string
	}{
		{"expired", examplePresigned, exampleTime.Add(86401 * time.Second), "AccessDenied"},
		{"not yet valid", examplePresigned, exampleTime.Add(-20 * time.Minute), "AccessDenied"},
		{"tampered expiry", strings.Replace(examplePresigned, "86400", "86401", 1), exampleTime, "SignatureDoesNotMatch"},
		{"added parameter", examplePresigned + "&versionId=1", exampleTime, "SignatureDoesNotMatch"},
		{"other key", strings.Replace(examplePresigned, "test.txt", "test.txu", 1), exampleTime, "SignatureDoesNotMatch"},
		{"expiry over a week", strings.Replace(examplePresigned, "86400", "604801", 1), exampleTime, "AuthorizationQueryParametersError"},
		{"expiry zero", strings.Replace(examplePresigned, "86400", "0", 1), exampleTime, "AuthorizationQueryParametersError"},
		{"no signature", strings.Split(examplePresigned, "&X-Amz-Signature")[0], exampleTime, "AuthorizationQueryParametersError"},
		{"other algorithm", strings.Replace(examplePresigned, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1), exampleTime, "AuthorizationQueryParametersError"},
		{"twice the date", examplePresigned + "&X-Amz-Date=20130524T000000Z", exampleTime, "AuthorizationQueryParametersError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := verifyPresigned(t, c.url, c.now, exampleSecret); code(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}
	if err := verifyPresigned(t, examplePresigned, exampleTime, "wrong"); code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestPresignRoundTripWithSDK(t *testing.T) {
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	now := time.Now().UTC()
	r, _ := http.NewRequest("PUT", "http://proxy.local:6190/bucket/"+Encode("ключ with space")+"?response-content-type=text%2Fplain&X-Amz-Expires=300", nil)
	signed, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: "client", SecretAccessKey: "s"}, r, string(UnsignedPayload), "s3", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyPresignedMethod(t, "PUT", signed, now.Add(time.Minute)); err != nil {
		t.Fatalf("SDK presigned URL rejected: %v", err)
	}
	u, _ := url.Parse(signed)
	if len(u.Query()["X-Amz-Signature"]) != 1 {
		t.Fatal("no signature in SDK URL")
	}
}

func verifyPresignedMethod(t *testing.T, method, rawURL string, now time.Time) error {
	r := httptest.NewRequest(method, rawURL, nil)
	a, err := ParsePresigned(r.URL.Query())
	if err != nil {
		return err
	}
	return NewVerifier(func() time.Time { return now }).VerifyPresigned(r, queryOf(r), a, "s")
}

func TestPresignedFormChecks(t *testing.T) {
	sig := "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	for _, c := range []struct {
		name, url, code string
	}{
		// S3 and versitygw answer a signature of the wrong form as one
		// that does not match.
		{"signature 65 hex", strings.Replace(examplePresigned, sig, sig+"0", 1), "SignatureDoesNotMatch"},
		{"signature upper case", strings.Replace(examplePresigned, sig, "X-Amz-Signature="+strings.ToUpper(strings.TrimPrefix(sig, "X-Amz-Signature=")), 1), "SignatureDoesNotMatch"},
		{"signature not hex", strings.Replace(examplePresigned, sig, "X-Amz-Signature="+strings.Repeat("z", 64), 1), "SignatureDoesNotMatch"},
		{"content sha256 not a hash", examplePresigned + "&X-Amz-Content-Sha256=nonsense", "InvalidArgument"},
		{"content sha256 upper case", examplePresigned + "&X-Amz-Content-Sha256=" + strings.ToUpper(EmptySHA256), "InvalidArgument"},
		{"content sha256 empty", examplePresigned + "&X-Amz-Content-Sha256=", "InvalidArgument"},
		{"content sha256 twice", examplePresigned + "&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD", "InvalidArgument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.url, nil)
			if _, err := ParsePresigned(r.URL.Query()); code(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}
	r := httptest.NewRequest("GET", examplePresigned+"&X-Amz-Content-Sha256="+EmptySHA256, nil)
	if a, err := ParsePresigned(r.URL.Query()); err != nil || a.Payload != EmptySHA256 {
		t.Fatalf("a valid hash: %+v, %v", a, err)
	}
}

func TestAdmitPresignedNeedsNoSecret(t *testing.T) {
	for _, c := range []struct {
		name string
		url  string
		now  time.Time
		code string
	}{
		{"expired", examplePresigned, exampleTime.Add(86401 * time.Second), "AccessDenied"},
		{"not yet valid", examplePresigned, exampleTime.Add(-20 * time.Minute), "AccessDenied"},
		{"host not signed", strings.Replace(examplePresigned, "X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range", 1), exampleTime, "AuthorizationQueryParametersError"},
		{"valid", examplePresigned, exampleTime, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.url, nil)
			a, err := ParsePresigned(r.URL.Query())
			if err != nil {
				t.Fatal(err)
			}
			if err := NewVerifier(func() time.Time { return c.now }).AdmitPresigned(r, &a); code(err) != c.code {
				t.Fatalf("got %v, want %q", err, c.code)
			}
		})
	}
}
