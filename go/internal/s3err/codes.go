package s3err

import "net/http"

// Code names an S3 error the proxy answers with. The constants below are
// the only codes there are: an error cannot be made from a free string, so
// a misspelt code does not compile, and every code has its row in codes.
type Code int

// The codes the proxy answers with: each is S3's code with Err before it
// (ErrInvalidAccessKeyID is S3's InvalidAccessKeyId). The zero Code is no
// error: a request that succeeded.
const (
	ErrAccessDenied Code = iota + 1
	ErrAuthorizationHeaderMalformed
	ErrAuthorizationQueryParametersError
	ErrBadDigest
	ErrBadGateway
	ErrEntityTooLarge
	ErrGatewayTimeout
	ErrIncompleteBody
	ErrInternalError
	ErrInvalidAccessKeyID
	ErrInvalidArgument
	ErrInvalidBucketName
	ErrInvalidChunkSizeError
	ErrInvalidDigest
	ErrInvalidRequest
	ErrInvalidToken
	ErrInvalidURI
	ErrMalformedTrailerError
	ErrMalformedXML
	ErrMethodNotAllowed
	ErrMissingContentLength
	ErrNoSuchBucket
	ErrNotImplemented
	ErrRequestHeaderSectionTooLarge
	ErrRequestTimeTooSkewed
	ErrRequestTimeout
	ErrServiceUnavailable
	ErrSignatureDoesNotMatch
	ErrSlowDown
	ErrXAmzContentSHA256Mismatch

	numCodes // not a code: the size of the table
)

// definition is what S3 says with a code: its word, its HTTP status, and
// the message it gives when nothing more specific is said.
type definition struct {
	word    string
	status  int
	message string
}

// codes is the one table of the proxy's S3 errors. The messages are S3's
// own where S3 has one, so that clients and their users read what they
// would read from S3.
var codes = [numCodes]definition{
	ErrAccessDenied:                      {"AccessDenied", http.StatusForbidden, "Access Denied"},
	ErrAuthorizationHeaderMalformed:      {"AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header is malformed."},
	ErrAuthorizationQueryParametersError: {"AuthorizationQueryParametersError", http.StatusBadRequest, "The query-string authentication parameters are not valid."},
	ErrBadDigest:                         {"BadDigest", http.StatusBadRequest, "The Content-MD5 you specified did not match what we received."},
	ErrBadGateway:                        {"BadGateway", http.StatusBadGateway, "The backend failed to answer."},
	ErrEntityTooLarge:                    {"EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed size."},
	ErrGatewayTimeout:                    {"GatewayTimeout", http.StatusGatewayTimeout, "The backend did not answer in time."},
	ErrIncompleteBody:                    {"IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header"},
	ErrInternalError:                     {"InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again."},
	ErrInvalidAccessKeyID:                {"InvalidAccessKeyId", http.StatusForbidden, "The AWS Access Key Id you provided does not exist in our records."},
	ErrInvalidArgument:                   {"InvalidArgument", http.StatusBadRequest, "Invalid Argument"},
	ErrInvalidBucketName:                 {"InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid."},
	ErrInvalidChunkSizeError:             {"InvalidChunkSizeError", http.StatusBadRequest, "Only the last chunk is allowed to have a size less than 8192 bytes"},
	ErrInvalidDigest:                     {"InvalidDigest", http.StatusBadRequest, "The Content-MD5 you specified was invalid."},
	ErrInvalidRequest:                    {"InvalidRequest", http.StatusBadRequest, "Invalid Request"},
	ErrInvalidToken:                      {"InvalidToken", http.StatusBadRequest, "The provided token is malformed or otherwise invalid."},
	ErrInvalidURI:                        {"InvalidURI", http.StatusBadRequest, "Couldn't parse the specified URI."},
	ErrMalformedTrailerError:             {"MalformedTrailerError", http.StatusBadRequest, "The request contained trailing data that was not well-formed or did not conform to our published schema."},
	ErrMalformedXML:                      {"MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."},
	ErrMethodNotAllowed:                  {"MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."},
	ErrMissingContentLength:              {"MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header."},
	ErrNoSuchBucket:                      {"NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist."},
	ErrNotImplemented:                    {"NotImplemented", http.StatusNotImplemented, "A header you provided implies functionality that is not implemented."},
	ErrRequestHeaderSectionTooLarge:      {"RequestHeaderSectionTooLarge", http.StatusBadRequest, "Your request header section exceeds the maximum allowed size."},
	ErrRequestTimeTooSkewed:              {"RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the current time is too large."},
	ErrRequestTimeout:                    {"RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period."},
	ErrServiceUnavailable:                {"ServiceUnavailable", http.StatusServiceUnavailable, "Service is unable to handle request."},
	ErrSignatureDoesNotMatch:             {"SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	ErrSlowDown:                          {"SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate."},
	ErrXAmzContentSHA256Mismatch:         {"XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."},
}

// String is the code as S3 writes it ("AccessDenied"); "" for no code.
func (c Code) String() string { return c.definition().word }

// Status is the HTTP status S3 answers the code with.
func (c Code) Status() int { return c.definition().status }

// Message is S3's message for the code when nothing more is said.
func (c Code) Message() string { return c.definition().message }

func (c Code) definition() definition {
	if c <= 0 || c >= numCodes {
		return definition{}
	}
	return codes[c]
}
