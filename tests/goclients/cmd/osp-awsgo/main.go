// Command osp-awsgo runs one S3 operation with aws-sdk-go-v2 (service/s3,
// its presigner, feature/s3/transfermanager and the older
// feature/s3/manager) with the SDK's default settings, except what a proxy
// in front of a local server needs: endpoint, path style, static keys,
// region. tests/test_clients_go.py drives it: argv[1] is a JSON object of
// harness.Params, stdout one "OSP-RESULT {json}" line.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"osp.test/goclients/internal/harness"
)

const sdkModules = "github.com/aws/aws-sdk-go-v2"

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
	client, err := newClient(ctx, p, rec)
	if err != nil {
		harness.Fail(err)
	}
	result, err := run(ctx, client, p)
	harness.Emit(result, toError(err), rec, harness.ModuleVersions(
		sdkModules+"/service/s3", sdkModules+"/feature/s3/transfermanager", sdkModules+"/feature/s3/manager"))
}

func newClient(ctx context.Context, p harness.Params, rec *harness.Recorder) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(p.Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(p.AccessKey, p.SecretKey, "")),
		config.WithHTTPClient(&http.Client{Transport: rec}),
	)
	if err != nil {
		return nil, fmt.Errorf("loading the SDK config: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(p.Endpoint)
		o.UsePathStyle = true
	}), nil
}

func run(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	switch p.Op {
	case "put":
		return put(ctx, client, p)
	case "put_stream":
		return putStream(ctx, client, p)
	case "upload":
		return upload(ctx, client, p)
	case "get":
		return get(ctx, client, p)
	case "download":
		return download(ctx, client, p)
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

// put: PutObject of a file (seekable, known length).
func put(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	f, err := os.Open(p.File)
	if err != nil {
		harness.Fail(err)
	}
	defer f.Close()
	in := &s3.PutObjectInput{Bucket: &p.Bucket, Key: &p.Key, Body: f, Metadata: p.Metadata}
	if p.ContentType != "" {
		in.ContentType = &p.ContentType
	}
	out, err := client.PutObject(ctx, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"etag": aws.ToString(out.ETag), "checksum_crc32": aws.ToString(out.ChecksumCRC32)}, nil
}

// putStream uploads a body of unknown length: via "put" (PutObject of a
// plain io.Reader), "tm" (transfermanager.UploadObject) or "manager"
// (manager.Uploader, deprecated but what most code in the wild calls).
func putStream(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	f, err := os.Open(p.File)
	if err != nil {
		harness.Fail(err)
	}
	defer f.Close()
	body := harness.HideLength(f)
	switch p.Via {
	case "put":
		out, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.Bucket, Key: &p.Key, Body: body})
		if err != nil {
			return nil, err
		}
		return map[string]any{"etag": aws.ToString(out.ETag)}, nil
	case "manager":
		out, err := manager.NewUploader(client).Upload(ctx, &s3.PutObjectInput{Bucket: &p.Bucket, Key: &p.Key, Body: body})
		if err != nil {
			return nil, err
		}
		return map[string]any{"etag": aws.ToString(out.ETag), "upload_id": out.UploadID}, nil
	case "tm", "":
		out, err := transfermanager.New(client).UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: &p.Bucket, Key: &p.Key, Body: body})
		if err != nil {
			return nil, err
		}
		return map[string]any{"etag": aws.ToString(out.ETag), "upload_id": aws.ToString(out.UploadID)}, nil
	}
	harness.Fail(fmt.Errorf("unknown via %q", p.Via))
	return nil, nil
}

// upload: a file through transfermanager.UploadObject (multipart above
// its 16 MiB threshold, 8 MiB parts, 5 at a time) or, via "manager",
// manager.Uploader (5 MiB parts).
func upload(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	f, err := os.Open(p.File)
	if err != nil {
		harness.Fail(err)
	}
	defer f.Close()
	if p.Via == "manager" {
		out, err := manager.NewUploader(client).Upload(ctx, &s3.PutObjectInput{Bucket: &p.Bucket, Key: &p.Key, Body: f, Metadata: p.Metadata})
		if err != nil {
			return nil, err
		}
		return map[string]any{"etag": aws.ToString(out.ETag), "upload_id": out.UploadID}, nil
	}
	out, err := transfermanager.New(client).UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: &p.Bucket, Key: &p.Key, Body: f, Metadata: p.Metadata})
	if err != nil {
		return nil, err
	}
	return map[string]any{"etag": aws.ToString(out.ETag), "upload_id": aws.ToString(out.UploadID)}, nil
}

// get: GetObject, whole or p.Range, into p.Out.
func get(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	in := &s3.GetObjectInput{Bucket: &p.Bucket, Key: &p.Key}
	if p.Range != "" {
		in.Range = &p.Range
	}
	out, err := client.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	n, err := harness.WriteFile(p.Out, out.Body)
	if err != nil {
		// A checksum mismatch the SDK found while reading is an error of the
		// transfer, reported as such (not a harness failure).
		return map[string]any{"written": n}, err
	}
	return map[string]any{
		"written":        n,
		"content_length": aws.ToInt64(out.ContentLength),
		"content_range":  aws.ToString(out.ContentRange),
		"etag":           aws.ToString(out.ETag),
		"checksum_crc32": aws.ToString(out.ChecksumCRC32),
	}, nil
}

// download: transfermanager.DownloadObject (GETs by part number) into p.Out.
func download(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	f, err := os.Create(p.Out)
	if err != nil {
		harness.Fail(err)
	}
	defer f.Close()
	out, err := transfermanager.New(client).DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: &p.Bucket, Key: &p.Key, WriterAt: f})
	if err != nil {
		return nil, err
	}
	return map[string]any{"content_length": aws.ToInt64(out.ContentLength), "etag": aws.ToString(out.ETag)}, nil
}

func head(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	out, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &p.Bucket, Key: &p.Key})
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"metadata":       out.Metadata,
		"content_type":   aws.ToString(out.ContentType),
		"content_length": aws.ToInt64(out.ContentLength),
		"etag":           aws.ToString(out.ETag),
	}, nil
}

// list: every key under p.Prefix, p.PageSize per ListObjectsV2 page.
func list(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	in := &s3.ListObjectsV2Input{Bucket: &p.Bucket}
	if p.Prefix != "" {
		in.Prefix = &p.Prefix
	}
	if p.PageSize > 0 {
		in.MaxKeys = &p.PageSize
	}
	keys, pages := []string{}, 0
	for pager := s3.NewListObjectsV2Paginator(client, in); pager.HasMorePages(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return map[string]any{"keys": keys, "pages": pages}, err
		}
		pages++
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return map[string]any{"keys": keys, "pages": pages}, nil
}

// copyObject: CopyObject, the source "bucket/key" with each key segment
// URL-escaped as the API asks; with p.Metadata, that metadata replaces the
// source's.
func copyObject(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	segments := strings.Split(p.SrcKey, "/")
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	source := p.Bucket + "/" + strings.Join(segments, "/")
	in := &s3.CopyObjectInput{Bucket: &p.Bucket, Key: &p.DstKey, CopySource: &source}
	if p.Metadata != nil {
		in.Metadata, in.MetadataDirective = p.Metadata, types.MetadataDirectiveReplace
	}
	out, err := client.CopyObject(ctx, in)
	if err != nil {
		return nil, err
	}
	etag := ""
	if out.CopyObjectResult != nil {
		etag = aws.ToString(out.CopyObjectResult.ETag)
	}
	return map[string]any{"etag": etag, "copy_source": source}, nil
}

func deleteObjects(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	objects := make([]types.ObjectIdentifier, 0, len(p.Keys))
	for _, k := range p.Keys {
		objects = append(objects, types.ObjectIdentifier{Key: aws.String(k)})
	}
	out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &p.Bucket, Delete: &types.Delete{Objects: objects}})
	if err != nil {
		return nil, err
	}
	deleted, failed := []string{}, []map[string]string{}
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	for _, e := range out.Errors {
		failed = append(failed, map[string]string{"key": aws.ToString(e.Key), "code": aws.ToString(e.Code), "message": aws.ToString(e.Message)})
	}
	return map[string]any{"deleted": deleted, "errors": failed}, nil
}

// presign: a URL for GET or PUT of p.Key, valid 15 minutes.
func presign(ctx context.Context, client *s3.Client, p harness.Params) (map[string]any, error) {
	presigner := s3.NewPresignClient(client, s3.WithPresignExpires(15*time.Minute))
	var (
		method, signedURL string
		headers           http.Header
	)
	if p.Op == "presign_get" {
		in := &s3.GetObjectInput{Bucket: &p.Bucket, Key: &p.Key}
		if p.Disposition != "" {
			in.ResponseContentDisposition = &p.Disposition
		}
		req, err := presigner.PresignGetObject(ctx, in)
		if err != nil {
			return nil, err
		}
		method, signedURL, headers = req.Method, req.URL, req.SignedHeader
	} else {
		req, err := presigner.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &p.Bucket, Key: &p.Key})
		if err != nil {
			return nil, err
		}
		method, signedURL, headers = req.Method, req.URL, req.SignedHeader
	}
	flat := map[string]string{}
	for k, v := range headers {
		flat[k] = strings.Join(v, ",")
	}
	return map[string]any{"method": method, "url": signedURL, "signed_headers": flat}, nil
}

// toError turns an SDK error into what the test asserts on: HTTP status,
// S3 error code and message when the server sent them.
func toError(err error) *harness.Error {
	if err == nil {
		return nil
	}
	e := &harness.Error{Text: err.Error()}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code, e.Message = ae.ErrorCode(), ae.ErrorMessage()
	}
	return e
}
