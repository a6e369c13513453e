// Package s3err defines the S3 errors the proxy answers with and writes them
// as S3 XML, the only error format S3 clients understand.
package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an S3 error: a code clients switch on, which decides the HTTP
// status, and a message for humans. Messages never carry secrets.
type Error struct {
	Code    Code
	Message string
	// Resource names the bucket or object the error is about, when known.
	Resource string
	// Details are the elements S3 adds to some errors (AWSAccessKeyId,
	// HeadersNotSigned, ServerTime...), in order. Never secrets: only what
	// the client sent or may know.
	Details []Detail
	// cause keeps the underlying error for logs; it is never sent to clients.
	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return e.Code.String() + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.cause }

// Status is the HTTP status of the error's code.
func (e *Error) Status() int { return e.Code.Status() }

// New makes an error of code with S3's message for it.
func New(code Code) *Error {
	return &Error{Code: code, Message: code.Message()}
}

// Newf makes an error of code with a message of its own.
func Newf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap is New with an underlying cause kept for logs.
func Wrap(cause error, code Code) *Error {
	e := New(code)
	e.cause = cause
	return e
}

// Wrapf is Newf with an underlying cause kept for logs.
func Wrapf(cause error, code Code, format string, args ...any) *Error {
	e := Newf(code, format, args...)
	e.cause = cause
	return e
}

// Detail is one extra element of an S3 error document.
type Detail struct{ Name, Value string }

// With returns a copy of e with the element name=value added.
func (e *Error) With(name, value string) *Error {
	c := *e
	c.Details = append(append([]Detail(nil), e.Details...), Detail{name, value})
	return &c
}

// WithResource returns a copy of e that names resource.
func (e *Error) WithResource(resource string) *Error {
	c := *e
	c.Resource = resource
	return &c
}

// As returns err as an *Error, or an InternalError that hides it.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(err, ErrInternalError)
}

// Is reports whether err is an S3 error of code.
func Is(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Callable turns the failure of a host callable into the client's error:
// an S3 error the callable's caller chose (a timeout is
// ServiceUnavailable) stays, anything else is an InternalError with the
// given message.
func Callable(err error, format string, args ...any) *Error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.cause = err
		return &c
	}
	return Wrapf(err, ErrInternalError, format, args...)
}

type xmlError struct {
	XMLName   xml.Name    `xml:"Error"`
	Code      string      `xml:"Code"`
	Message   string      `xml:"Message"`
	Details   []xmlDetail // each named by its XMLName
	Resource  string      `xml:"Resource,omitempty"`
	RequestID string      `xml:"RequestId"`
}

type xmlDetail struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// Write sends e as an S3 XML error body. HEAD responses carry no body, as S3
// does, but keep the status and request id.
func Write(w http.ResponseWriter, r *http.Request, e *Error, requestID string) {
	details := make([]xmlDetail, len(e.Details))
	for i, d := range e.Details {
		details[i] = xmlDetail{XMLName: xml.Name{Local: d.Name}, Value: d.Value}
	}
	body, err := xml.Marshal(xmlError{Code: e.Code.String(), Message: e.Message, Details: details, Resource: e.Resource, RequestID: requestID})
	if err != nil { // cannot happen with string fields; keep the status anyway
		body = nil
	}
	body = append([]byte(xml.Header), body...)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("x-amz-request-id", requestID)
	if e.Status() == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		// SlowDown, a callable timeout: soon, not now (a rate limit says
		// when, and has set it already).
		h.Set("Retry-After", "1")
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status())
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status())
	_, _ = w.Write(body)
}
