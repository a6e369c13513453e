package h1

import (
	"net/http"
	"net/url"
)

// inlineValues is how many field values of a request head the exchange
// holds without another allocation: S3 clients send about 10. 16 costs
// no more memory than 12 would: the allocator rounds the exchange up to
// 896 bytes either way (Go 1.26, amd64).
const inlineValues = 16

// exchange is one request and its answer, in one allocation: the request
// as the handler sees it, with the URL and the field values of a head
// parseHead took, its context and its response. A handler may keep any
// of them after it returns: then it keeps the whole exchange, which no one
// reuses.
type exchange struct {
	req    http.Request
	url    url.URL
	values [inlineValues]string
	ctx    requestContext
	w      response
}
