package proxy

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
)

type listAllMyBucketsResult struct {
	XMLName           xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner             bucketOwner   `xml:"Owner"`
	Buckets           []bucketEntry `xml:"Buckets>Bucket"`
	ContinuationToken string        `xml:"ContinuationToken,omitempty"`
	Prefix            string        `xml:"Prefix,omitempty"`
}

// maxBuckets is the most ListBuckets returns in one page, as in S3.
const maxBuckets = 10000

type bucketOwner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

// listBuckets answers ListBuckets from cos_map: the buckets the validator
// lets token use, in name order, filtered by prefix and paged by
// max-buckets and continuation-token (the last name of the previous page,
// base64-encoded). No backend is asked; cos_map is the proxy's namespace.
func (h *Handler) listBuckets(ctx context.Context, w http.ResponseWriter, r *http.Request, token, requestID string) error {
	q := r.URL.Query()
	limit := maxBuckets
	if v := q.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBuckets {
			return s3err.New("InvalidArgument", "max-buckets must be a number from 1 to %d.", maxBuckets)
		}
		limit = n
	}
	var after string
	if v := q.Get("continuation-token"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return s3err.New("InvalidArgument", "The continuation token provided is incorrect.")
		}
		after = string(raw)
	}
	prefix := q.Get("prefix")
	names := make([]string, 0, len(h.opts.Buckets))
	for name := range h.opts.Buckets {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	result := listAllMyBucketsResult{Owner: bucketOwner{ID: token, DisplayName: token}, Prefix: prefix}
	created := h.started.UTC().Format(time.RFC3339)
	for _, name := range names {
		if len(result.Buckets) == limit {
			result.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(result.Buckets[limit-1].Name))
			break
		}
		access := s3op.Access{Token: token, Bucket: name, Method: http.MethodGet, Operation: "ListBuckets"}
		err := h.opts.Authorizer.Authorize(ctx, access, h.opts.Buckets[name].TTL())
		var denied *s3err.Error
		switch {
		case err == nil:
			result.Buckets = append(result.Buckets, bucketEntry{Name: name, CreationDate: created})
		case errors.As(err, &denied) && denied.Code == "AccessDenied":
		default:
			return err
		}
	}
	body, err := xml.Marshal(result)
	if err != nil {
		return s3err.Wrap(err, "InternalError", "We encountered an internal error. Please try again.")
	}
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("x-amz-request-id", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
