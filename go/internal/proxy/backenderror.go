package proxy

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

// A backend's answer to a request the proxy signed with the bucket's own
// credentials can describe those credentials: an AWS or IBM
// SignatureDoesNotMatch carries the AWSAccessKeyId, the StringToSign, the
// CanonicalRequest and the SignatureProvided (a signature the backend
// would accept for that string). None of it is the client's business, and
// a signature is something to replay. So a backend's authentication error
// reaches the client as the proxy's own 403 AccessDenied; what the backend
// said (status, code, message, request id, but never a signature, string
// to sign or canonical request) goes to the request's log line.

// maxBackendErrorBody bounds how much of a backend's error body the proxy
// reads to judge it: S3 error documents are a few KiB at most.
const maxBackendErrorBody = 16 << 10

// backendAuthCodes are the S3 error codes that mean the backend refused
// the proxy's authentication, whatever their status (some are 400s).
var backendAuthCodes = map[string]bool{
	"AccessDenied": true, "AccountProblem": true, "AllAccessDisabled": true,
	"AuthorizationHeaderMalformed": true, "AuthorizationQueryParametersError": true,
	"CredentialsNotSupported": true, "ExpiredToken": true, "InvalidAccessKeyId": true,
	"InvalidSecurity": true, "InvalidToken": true, "MissingSecurityHeader": true,
	"NotSignedUp": true, "RequestTimeTooSkewed": true, "SignatureDoesNotMatch": true,
	"TokenRefreshRequired": true,
}

// backendPassCodes are 403s a client needs to see as they are and that say
// nothing about the proxy's credentials: an archived object must be
// restored first.
var backendPassCodes = map[string]bool{"InvalidObjectState": true}

// backendPassMessages are the messages of a backend's AccessDenied that
// give a reason the client needs and say nothing about the proxy's
// credentials: S3's (and versitygw's) refusal to change a locked object.
// The proxy still answers with its own document, in these words; any other
// AccessDenied gets the proxy's own message (a backend's "Access Denied."
// most often means the bucket's credentials lack a right).
var backendPassMessages = map[string]bool{
	"Access Denied because object protected by object lock.": true,
}

// signingDetails mark an error body that describes a signature; any such
// body is hidden, whatever its status and code.
var signingDetails = [][]byte{
	[]byte("<StringToSign"), []byte("<CanonicalRequest"), []byte("<SignatureProvided"), []byte("<AWSAccessKeyId"),
}

// backendRefusal is what the log keeps of a backend's authentication error.
type backendRefusal struct {
	status                   int
	code, message, requestID string
}

func (b *backendRefusal) Error() string {
	return fmt.Sprintf("backend refused the request: %d %s: %q (backend request id %s)", b.status, b.code, b.message, b.requestID)
}

// mayHideBackendError reports whether an answer's status is one an
// authentication error comes with. A HEAD answer has no body, so nothing
// to hide: its status is kept.
func mayHideBackendError(r *http.Request, resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return r.Method != http.MethodHead
	}
	return false
}

// backendErrorDocument is the part of an S3 error body the log may keep.
type backendErrorDocument struct {
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	RequestID string `xml:"RequestId"`
}

// ibmErrorDocument is IBM IAM's JSON error, as IBM COS answers a bearer
// token it refuses.
type ibmErrorDocument struct {
	Code    string `json:"errorCode"`
	Message string `json:"errorMessage"`
	Context struct {
		RequestID string `json:"requestId"`
	} `json:"context"`
}

// judgeBackendError reads at most maxBackendErrorBody bytes of a 400, 401
// or 403 answer and decides. An authentication error is returned as a
// backendRefusal, its body read and closed; any other answer goes on to
// the client unchanged (resp.Body still yields every byte).
func judgeBackendError(resp *http.Response) *backendRefusal {
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxBackendErrorBody+1))
	refusal := describeBackendError(resp, head)
	hide := resp.StatusCode == http.StatusUnauthorized || backendAuthCodes[refusal.code] ||
		(resp.StatusCode == http.StatusForbidden && !backendPassCodes[refusal.code])
	for _, marker := range signingDetails {
		hide = hide || bytes.Contains(head, marker)
	}
	if hide {
		discard(resp.Body)
		return refusal
	}
	rest := resp.Body
	if err != nil {
		rest = errReadCloser{err: err, ReadCloser: rest}
	}
	resp.Body = prefixedBody{Reader: io.MultiReader(bytes.NewReader(head), rest), Closer: rest}
	return nil
}

// describeBackendError extracts the code, message and request id of an
// error body (S3 XML or IBM JSON); fields it cannot find stay empty, the
// request id falling back to the x-amz-request-id header.
func describeBackendError(resp *http.Response, body []byte) *backendRefusal {
	b := &backendRefusal{status: resp.StatusCode}
	var doc backendErrorDocument
	var ibm ibmErrorDocument
	switch {
	case xml.Unmarshal(body, &doc) == nil:
		b.code, b.message, b.requestID = doc.Code, doc.Message, doc.RequestID
	case json.Unmarshal(body, &ibm) == nil:
		b.code, b.message, b.requestID = ibm.Code, ibm.Message, ibm.Context.RequestID
	}
	if b.requestID == "" {
		b.requestID = resp.Header.Get("X-Amz-Request-Id")
	}
	b.code, b.message, b.requestID = logSafe(b.code, 64), logSafe(b.message, 256), logSafe(b.requestID, 128)
	return b
}

// logSafe keeps a backend's text fit for a log line: bounded, printable.
func logSafe(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "..."
	}
	return s
}

// refuseForBackend answers a backend's authentication error as the
// proxy's own AccessDenied; the backend's words go to the log.
func (h *Handler) refuseForBackend(w http.ResponseWriter, r *http.Request, x *exchange, fw *forward, b *backendRefusal) {
	bucket := fw.target.bucket
	e := s3err.Wrapf(b, s3err.ErrAccessDenied, "Access Denied: the backend of bucket %s refused the request.", bucket)
	if b.code == "AccessDenied" && backendPassMessages[b.message] {
		e = s3err.Wrapf(b, s3err.ErrAccessDenied, "%s", b.message)
	}
	h.fail(w, r, x, e.WithResource(bucket))
}

// prefixedBody is a response body whose first bytes were read already.
type prefixedBody struct {
	io.Reader
	io.Closer
}

// errReadCloser returns err once its reader is exhausted: the error the
// first read of a body met, kept for whoever reads the rest.
type errReadCloser struct {
	io.ReadCloser
	err error
}

func (e errReadCloser) Read([]byte) (int, error) { return 0, e.err }
