package proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/object-storage-proxy/osp/internal/s3err"
)

type listAllMyBucketsResult struct {
	XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   bucketOwner   `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

type bucketOwner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

// listBuckets answers ListBuckets from cos_map: the buckets the validator
// lets token use. No backend is asked; cos_map is the proxy's namespace.
func (h *Handler) listBuckets(ctx context.Context, w http.ResponseWriter, token, requestID string) error {
	names := make([]string, 0, len(h.opts.Buckets))
	for name := range h.opts.Buckets {
		names = append(names, name)
	}
	sort.Strings(names)
	result := listAllMyBucketsResult{Owner: bucketOwner{ID: token, DisplayName: token}}
	created := h.started.UTC().Format(time.RFC3339)
	for _, name := range names {
		err := h.opts.Authorizer.Authorize(ctx, token, name, h.opts.Buckets[name].TTL())
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
