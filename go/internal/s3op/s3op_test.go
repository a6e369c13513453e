package s3op

import (
	"net/url"
	"testing"
)

func TestName(t *testing.T) {
	cases := []struct {
		method, bucket, key, query string
		copy                       bool
		want                       string
	}{
		{"GET", "", "", "", false, "ListBuckets"},
		{"GET", "b", "", "list-type=2&prefix=a/", false, "ListObjectsV2"},
		{"GET", "b", "", "prefix=a/", false, "ListObjects"},
		{"GET", "b", "", "uploads", false, "ListMultipartUploads"},
		{"GET", "b", "", "location", false, "GetBucketLocation"},
		{"POST", "b", "", "delete", false, "DeleteObjects"},
		{"HEAD", "b", "", "", false, "HeadBucket"},
		{"PUT", "b", "", "", false, "CreateBucket"},
		{"DELETE", "b", "", "", false, "DeleteBucket"},
		{"GET", "b", "k", "", false, "GetObject"},
		{"HEAD", "b", "k", "", false, "HeadObject"},
		{"PUT", "b", "k", "", false, "PutObject"},
		{"PUT", "b", "k", "", true, "CopyObject"},
		{"DELETE", "b", "k", "", false, "DeleteObject"},
		{"POST", "b", "k", "uploads", false, "CreateMultipartUpload"},
		{"PUT", "b", "k", "partNumber=1&uploadId=x", false, "UploadPart"},
		{"PUT", "b", "k", "partNumber=1&uploadId=x", true, "UploadPartCopy"},
		{"POST", "b", "k", "uploadId=x", false, "CompleteMultipartUpload"},
		{"DELETE", "b", "k", "uploadId=x", false, "AbortMultipartUpload"},
		{"GET", "b", "k", "uploadId=x", false, "ListParts"},
		{"GET", "b", "k", "tagging", false, "GetObjectTagging"},
		{"PUT", "b", "k", "tagging", false, "PutObjectTagging"},
		{"PUT", "b", "", "tagging", false, "PutBucketTagging"},
		{"PATCH", "b", "k", "", false, "Unknown"},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		if got := Name(Request{Method: c.method, Bucket: c.bucket, Key: c.key, Query: q, CopySource: c.copy}); got != c.want {
			t.Errorf("%s /%s/%s?%s = %s, want %s", c.method, c.bucket, c.key, c.query, got, c.want)
		}
	}
}
