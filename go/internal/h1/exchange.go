package h1

import (
	"net/http"
	"net/url"
)

// inlineValues is how many field names of a request head the exchange
// holds the values of without another allocation: S3 clients send 7 to 12.
// With 12 the exchange takes 896 bytes, one of the allocator's size
// classes (TestExchangeSize); more would round it up to 1024.
const inlineValues = 12

// exchange is one request and its answer, in one allocation: the request
// as the handler sees it, with the URL, the field values and the body of
// a head parseHead took, its context, its body as the handler reads it,
// and its response. A handler may keep any
// of them after it returns: then it keeps the whole exchange, which no one
// reuses.
type exchange struct {
	req       http.Request
	url       url.URL
	values    [inlineValues]string
	fixedBody fixedBody
	ctx       requestContext
	body      requestBody
	w         response
}
