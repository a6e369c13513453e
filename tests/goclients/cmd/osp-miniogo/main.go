// Command osp-miniogo runs one S3 operation with minio-go v7 with its
// default settings (over plain HTTP it signs uploads chunk by chunk,
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD; objects above 16 MiB go multipart),
// except what a proxy in front of a local server needs: endpoint, path
// style, static keys, region. tests/test_clients_go.py drives it: argv[1]
// is a JSON object of harness.Params, stdout one "OSP-RESULT {json}" line.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"osp.test/goclients/internal/harness"
)

func main() {
	p, err := harness.ReadParams()
	if err != nil {
		harness.Fail(err)
	}
	rec, err := harness.NewRecorder(p)
	if err != nil {
		harness.Fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client, err := newClient(p, rec)
	if err != nil {
		harness.Fail(err)
	}
	result, err := run(ctx, client, p)
	harness.Emit(result, toError(err), rec, harness.ModuleVersions("github.com/minio/minio-go/v7"))
}

func newClient(p harness.Params, rec *harness.Recorder) (*minio.Client, error) {
	u, err := url.Parse(p.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("parsing endpoint: %w", err)
	}
	region := p.Region
	if region == "auto" {
		region = "" // minio-go then asks GetBucketLocation first
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(p.AccessKey, p.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Transport:    rec,
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		// Off unless a test asks (not a default): signed chunks with a
		// signed CRC32C trailer over HTTP.
		TrailingHeaders: p.TrailingHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	return client, nil
}

func run(ctx context.Context, client *minio.Client, p harness.Params) (map[string]any, error) {
	switch p.Op {
	case "put", "upload":
		return put(ctx, client, p, false)
	case "put_stream":
		return put(ctx, client, p, true)
	case "get":
		return get(ctx, client, p)
	case "head":
		return head(ctx, client, p)
	case "list":
		return list(ctx, client, p)
	case "copy":
		return copyObject(ctx, client, p)
	case "delete_objects":
		return deleteObjects(ctx, client, p)
	case "presign_get", "presign_put":
		return presign(ctx, client, p)
	}
	harness.Fail(fmt.Errorf("unknown op %q", p.Op))
	return nil, nil
}

// put: PutObject of a file with its size (one PUT up to 16 MiB, multipart
// above), or, unknownLength, of a plain io.Reader with size -1 (always
// multipart).
func put(ctx context.Context, client *minio.Client, p harness.Params, unknownLength bool) (map[string]any, error) {
	f, err := os.Open(p.File)
	if err != nil {
		harness.Fail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		harness.Fail(err)
	}
	opts := minio.PutObjectOptions{UserMetadata: p.Metadata, ContentType: p.ContentType}
	if p.ChecksumCRC32C {
		opts.Checksum = minio.ChecksumCRC32C
	}
	var info minio.UploadInfo
	if unknownLength {
		info, err = client.PutObject(ctx, p.Bucket, p.Key, harness.HideLength(f), -1, opts)
	} else {
		info, err = client.PutObject(ctx, p.Bucket, p.Key, f, st.Size(), opts)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"etag": info.ETag, "size": info.Size, "checksum_crc32c": info.ChecksumCRC32C}, nil
}

// get: GetObject, whole or p.RangeStart..p.RangeEnd, into p.Out.
func get(ctx context.Context, client *minio.Client, p harness.Params) (map[string]any, error) {
	opts := minio.GetObjectOptions{}
	if p.Range != "" {
		if err := opts.SetRange(p.RangeStart, p.RangeEnd); err != nil {
			harness.Fail(err)
		}
	}
	obj, err := client.GetObject(ctx, p.Bucket, p.Key, opts)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	// minio-go sends the GET on the first Read: errors come from here.
	n, err := harness.WriteFile(p.Out, obj)
	if err != nil {
		return map[string]any{"written": n}, err
	}
	return map[string]any{"written": n}, nil
}

func head(ctx context.Context, client *minio.Client, p harness.Params) (map[string]any, error) {
	info, err := client.StatObject(ctx, p.Bucket, p.Key, minio.StatObjectOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"metadata":       info.UserMetadata,
		"content_type":   info.ContentType,
		"content_length": info.Size,
		"etag":           info.ETag,
	}, nil
}

// list: every key under p.Prefix (recursive), p.PageSize per request.
func list(ctx context.Context, client *minio.Client, p harness.Params) (map[string]any, error) {
	keys := []string{}
	for obj := range client.ListObjects(ctx, p.Bucket, minio.ListObjectsOptions{Prefix: p.Prefix, Recursive: true, MaxKeys: int(p.PageSize)}) {
		if obj.Err != nil {
			return map[string]any{"keys": keys}, obj.Err
		}
		keys = append(keys, obj.Key)
	}
	return map[string]any{"keys": keys}, nil
}

// copyObject: CopyObject; with p.Metadata, that metadata replaces the
// source's.
func copyObject(ctx context.Context, client *minio.Client, p harness.Params) (map[string]any, error) {
	info, err := client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: p.Bucket, Object: p.DstKey, UserMetadata: p.Metadata, ReplaceMetadata: p.Metadata != nil},
		minio.CopySrcOptions{Bucket: p.Bucket, Object: p.SrcKey})
	if err != nil {
		return nil, err
	}
	return map[string]any{"etag": info.ETag}, nil
}

func deleteObjects(ctx context.Context, client *minio.Client, p harness.Params) (map[string]any, error) {
	objects := make(chan minio.ObjectInfo, len(p.Keys))
	for _, k := range p.Keys {
		objects <- minio.ObjectInfo{Key: k}
	}
	close(objects)
	deleted, failed := []string{}, []map[string]string{}
	for r := range client.RemoveObjectsWithResult(ctx, p.Bucket, objects, minio.RemoveObjectsOptions{}) {
		if r.Err != nil {
			e := toError(r.Err)
			failed = append(failed, map[string]string{"key": r.ObjectName, "code": e.Code, "message": e.Message})
			continue
		}
		deleted = append(deleted, r.ObjectName)
	}
	return map[string]any{"deleted": deleted, "errors": failed}, nil
}

// presign: a URL for GET or PUT of p.Key, valid 15 minutes.
func presign(ctx context.Context, client *minio.Client, p harness.Params) (map[string]any, error) {
	var (
		u   *url.URL
		err error
	)
	if p.Op == "presign_get" {
		params := url.Values{}
		if p.Disposition != "" {
			params.Set("response-content-disposition", p.Disposition)
		}
		u, err = client.PresignedGetObject(ctx, p.Bucket, p.Key, 15*time.Minute, params)
	} else {
		u, err = client.PresignedPutObject(ctx, p.Bucket, p.Key, 15*time.Minute)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"url": u.String()}, nil
}

// toError turns a minio-go error into what the test asserts on.
func toError(err error) *harness.Error {
	if err == nil {
		return nil
	}
	var r minio.ErrorResponse
	if !errors.As(err, &r) {
		r = minio.ToErrorResponse(err)
	}
	return &harness.Error{Status: r.StatusCode, Code: r.Code, Message: r.Message, Text: err.Error()}
}
