package sigv4

import (
	"errors"
	"net/url"
	"strings"
)

// QueryParam is one decoded query parameter, in request order.
type QueryParam struct{ Key, Value string }

// Query is a request's query string, parsed once and read by everyone.
type Query struct {
	// Params are in the client's order: what SigV4 signs and what the
	// backend is sent, re-encoded.
	Params []QueryParam
	// Values are the same parameters by name, for routing and
	// authorization; nil when there are none (most requests: no map to
	// make). Shared: read, never change.
	Values url.Values
}

// errSemicolon is url.ParseQuery's refusal: a query some servers split at
// ';' is one a backend could read otherwise than the proxy.
var errSemicolon = errors.New("invalid semicolon separator in query")

// ParseQuery splits a raw query into decoded parameters, in order. '+' is
// a space, as in AWS's own services and SDKs (SDKs send a literal plus as
// %2B); parameters without '=' are kept with an empty value, as SigV4
// requires. It refuses what url.ParseQuery refuses: a bad percent escape,
// and a ';', which some servers take as a separator.
func ParseQuery(rawQuery string) (Query, error) {
	var q Query
	if rawQuery == "" {
		return q, nil
	}
	n := strings.Count(rawQuery, "&") + 1
	q.Params = make([]QueryParam, 0, n)
	// Values' slices share one array, each capped at its own length: a
	// key given again appends to a new array, never into its neighbour's.
	values := make([]string, 0, n)
	for p := range strings.SplitSeq(rawQuery, "&") {
		if p == "" {
			continue
		}
		if strings.Contains(p, ";") {
			return Query{}, errSemicolon
		}
		k, v, _ := strings.Cut(p, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return Query{}, err
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return Query{}, err
		}
		q.Params = append(q.Params, QueryParam{key, value})
		if q.Values == nil {
			q.Values = url.Values{}
		}
		if given, ok := q.Values[key]; ok {
			q.Values[key] = append(given, value)
			continue
		}
		values = append(values, value)
		q.Values[key] = values[len(values)-1 : len(values) : len(values)]
	}
	return q, nil
}
