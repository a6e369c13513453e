package proxy

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/s3err"
	"github.com/object-storage-proxy/osp/internal/s3op"
	"github.com/object-storage-proxy/osp/internal/sigv4"
)

// The buckets of a pattern entry ("team-a-*") are not in cos_map: they are
// what the entry's backend lists. ListBuckets asks each backend once (the
// patterns that share a store and credentials share one listing) and keeps
// a name only if the proxy would send a request for it to that very entry:
// a valid bucket name that the pattern serves and no exact entry or longer
// pattern takes.

const (
	// maxListPages bounds the pages read from one backend's ListBuckets
	// (each at most 10000 buckets).
	maxListPages = 100
	// maxListPageBytes bounds one page of a backend's ListBuckets answer.
	maxListPageBytes = 16 << 20
)

// patternStore is one backend listing: a store and the credentials the
// proxy signs with there.
type patternStore struct {
	scheme, endpoint, region string
	creds                    creds.Backend
}

// backendBucketList is the part of a backend's ListAllMyBucketsResult the
// proxy reads.
type backendBucketList struct {
	Buckets []struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	} `xml:"Buckets>Bucket"`
	ContinuationToken string `xml:"ContinuationToken"`
}

// listPatternBuckets lists the buckets of every pattern entry that wanted
// keeps, each with the pattern entry that serves it. A store that fails to
// list fails the whole answer; a pattern whose credentials the fetcher
// denies this token is skipped (none of its buckets are the token's).
func (h *Handler) listPatternBuckets(ctx context.Context, token, prefix string, wanted func(string) bool) ([]listedBucket, error) {
	patterns := h.buckets.Patterns()
	if len(patterns) == 0 {
		return nil, nil
	}
	stores := map[patternStore]config.Entry{} // a store, and the first pattern it serves (for messages)
	owner := map[string]patternStore{}        // pattern key -> its store
	for _, p := range patterns {
		if own := strings.TrimSuffix(p.Key, config.Wildcard); !strings.HasPrefix(own, prefix) && !strings.HasPrefix(prefix, own) {
			continue // the client's prefix rules out every bucket of this pattern
		}
		access := s3op.Access{Token: token, Bucket: p.Key, Method: http.MethodGet, Operation: "ListBuckets"}
		c, err := h.opts.BackendCreds.For(ctx, access, p.Bucket)
		switch {
		case s3err.Is(err, s3err.ErrAccessDenied):
			continue
		case err != nil:
			return nil, err
		}
		store := patternStore{scheme: p.Bucket.Scheme, endpoint: p.Bucket.Endpoint(), region: p.Bucket.Region, creds: c}
		if _, seen := stores[store]; !seen {
			stores[store] = p
		}
		owner[p.Key] = store
	}
	type listing struct {
		buckets []listedBucket
		err     error
	}
	results := make([]listing, len(stores))
	var wg sync.WaitGroup
	i := 0
	for store, first := range stores {
		wg.Add(1)
		go func(out *listing) {
			defer wg.Done()
			out.buckets, out.err = h.listStore(ctx, store, first, func(name string) (*config.Bucket, bool) {
				e, ok := h.buckets.Lookup(name)
				if !ok || !e.Pattern || owner[e.Key] != store || !config.ValidBucketName(name) || !wanted(name) {
					return nil, false
				}
				return e.Bucket, true
			})
		}(&results[i])
		i++
	}
	wg.Wait()
	var all []listedBucket
	for _, l := range results {
		if l.err != nil {
			return nil, l.err
		}
		all = append(all, l.buckets...)
	}
	return all, nil
}

// listStore reads a store's ListBuckets, page by page, keeping the names
// keep accepts.
func (h *Handler) listStore(ctx context.Context, store patternStore, first config.Entry, keep func(string) (*config.Bucket, bool)) ([]listedBucket, error) {
	fw := &forward{target: target{bucket: first.Key}, bucket: first.Bucket, creds: store.creds, payload: sigv4.EmptySHA256}
	if !store.creds.IsHMAC() {
		var err error
		if fw.bearer, err = h.bearerToken(ctx, store.creds.APIKey, first.Key); err != nil {
			return nil, err
		}
	}
	var out []listedBucket
	var next string
	for page := 0; page < maxListPages; page++ {
		list, err := h.listPage(ctx, store, fw, next)
		if err != nil {
			return nil, err
		}
		for _, b := range list.Buckets {
			if entry, ok := keep(b.Name); ok {
				out = append(out, listedBucket{name: b.Name, created: creationDate(b.CreationDate, h.started), entry: entry})
			}
		}
		if list.ContinuationToken == "" || list.ContinuationToken == next {
			return out, nil
		}
		next = list.ContinuationToken
	}
	return nil, s3err.Newf(s3err.ErrServiceUnavailable, "The backend of buckets %s lists more than %d pages of buckets.", first.Key, maxListPages)
}

// listPage sends one ListBuckets to a store and reads its answer.
func (h *Handler) listPage(ctx context.Context, store patternStore, fw *forward, continuation string) (*backendBucketList, error) {
	u := &url.URL{Scheme: store.scheme, Host: store.endpoint, Path: "/"}
	if continuation != "" {
		u.RawQuery = "continuation-token=" + sigv4.Encode(continuation)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, s3err.Wrap(err, s3err.ErrInternalError)
	}
	req.Header.Set("X-Amz-Content-Sha256", sigv4.EmptySHA256)
	if err := h.signers.authorize(req, fw, h.opts.Now()); err != nil {
		return nil, s3err.Wrap(err, s3err.ErrInternalError)
	}
	pattern := fw.target.bucket
	resp, err := h.opts.Transport.RoundTrip(req)
	if err != nil {
		code, message := s3err.ErrBadGateway, "The backend of buckets %s failed to list them."
		if isTimeout(err) {
			code, message = s3err.ErrGatewayTimeout, "The backend of buckets %s did not list them in time."
		}
		return nil, s3err.Wrapf(fmt.Errorf("list buckets of %s: %w", pattern, err), code, message, pattern)
	}
	defer discard(resp.Body)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListPageBytes+1))
	switch {
	case err != nil:
		return nil, s3err.Wrapf(fmt.Errorf("list buckets of %s: %w", pattern, err), s3err.ErrBadGateway, "The backend of buckets %s failed to list them.", pattern)
	case resp.StatusCode != http.StatusOK:
		// What the backend said goes to the log line, never to the
		// client (it may describe the proxy's credentials).
		why := describeBackendError(resp, body)
		return nil, s3err.Wrapf(fmt.Errorf("list buckets of %s: %w", pattern, why), s3err.ErrBadGateway, "The backend of buckets %s refused to list them.", pattern)
	case len(body) > maxListPageBytes:
		return nil, s3err.Newf(s3err.ErrBadGateway, "The backend of buckets %s listed more than %d bytes in one page.", pattern, maxListPageBytes)
	}
	var list backendBucketList
	if err := xml.Unmarshal(body, &list); err != nil {
		return nil, s3err.Wrapf(fmt.Errorf("list buckets of %s: %w", pattern, err), s3err.ErrBadGateway, "The backend of buckets %s answered ListBuckets with no bucket list.", pattern)
	}
	return &list, nil
}

// creationDate is a backend's creation date in S3's form, or the proxy's
// start when the backend gave none it could read.
func creationDate(backend string, started time.Time) string {
	if t, err := time.Parse(time.RFC3339Nano, backend); err == nil {
		return t.UTC().Format(time.RFC3339)
	}
	return started.UTC().Format(time.RFC3339)
}
