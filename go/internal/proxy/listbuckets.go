package proxy

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/object-storage-proxy/osp/internal/config"
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
	// BucketRegion is the region of the bucket's cos_map entry: S3 lists
	// it since 2024, and SDKs that read it (aws-sdk-go-v2) expect it.
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

// listBuckets answers ListBuckets: the buckets the validator lets token
// use, in name order, filtered by prefix and paged by max-buckets and
// continuation-token (the last name of the previous page, base64-encoded).
// The names are cos_map's exact entries and, for each pattern entry, the
// buckets its backend lists that the pattern serves (listPatternBuckets);
// a name from both is listed once, as the exact entry that serves it. A
// pattern's backend that cannot list fails the whole answer: a partial
// list would look to a client (a sync tool) like buckets that are gone.
func (h *Handler) listBuckets(ctx context.Context, w http.ResponseWriter, q url.Values, token, requestID string) error {
	limit := maxBuckets
	if v := q.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBuckets {
			return s3err.Newf(s3err.ErrInvalidArgument, "Argument max-buckets must be an integer between 1 and %d.", maxBuckets).
				With("ArgumentName", "max-buckets").With("ArgumentValue", truncate(v))
		}
		limit = n
	}
	var after string
	if v := q.Get("continuation-token"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return s3err.Newf(s3err.ErrInvalidArgument, "The continuation token provided is incorrect.")
		}
		after = string(raw)
	}
	prefix := q.Get("prefix")
	wanted := func(name string) bool { return strings.HasPrefix(name, prefix) && name > after }
	created := h.started.UTC().Format(time.RFC3339)
	var candidates []listedBucket
	for name, b := range h.buckets.Exact() {
		if wanted(name) {
			candidates = append(candidates, listedBucket{name: name, created: created, entry: b})
		}
	}
	listed, err := h.listPatternBuckets(ctx, token, prefix, wanted)
	if err != nil {
		return err
	}
	candidates = append(candidates, listed...)
	sort.Slice(candidates, func(i, j int) bool { return candidates[i].name < candidates[j].name })
	result := listAllMyBucketsResult{Owner: bucketOwner{ID: token, DisplayName: token}, Prefix: prefix}
	for _, c := range candidates {
		if len(result.Buckets) == limit {
			result.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(result.Buckets[limit-1].Name))
			break
		}
		access := s3op.Access{Token: token, Bucket: c.name, Method: http.MethodGet, Operation: "ListBuckets"}
		err := h.opts.Authorizer.Authorize(ctx, access, c.entry.TTL())
		switch {
		case err == nil:
			result.Buckets = append(result.Buckets, bucketEntry{Name: c.name, CreationDate: c.created, BucketRegion: c.entry.Region})
		case s3err.Is(err, s3err.ErrAccessDenied):
		default:
			return err
		}
	}
	body, err := xml.Marshal(result)
	if err != nil {
		return s3err.Wrap(err, s3err.ErrInternalError)
	}
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("x-amz-request-id", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// listedBucket is one name ListBuckets may answer, with the entry that
// serves it (whose TTL its validator answer gets).
type listedBucket struct {
	name, created string
	entry         *config.Bucket
}
