// Package s3op names the S3 operation of a request (GetObject, PutObject,
// ListObjectsV2, ...) from its method, target and query, as S3 itself
// would, for authorization callables and, later, metrics.
package s3op

import (
	"net/http"
	"net/url"
)

// Request is what the operation depends on.
type Request struct {
	Method     string
	Bucket     string
	Key        string
	Query      url.Values
	CopySource bool // x-amz-copy-source is present
}

// subresources maps a bucket- or object-level query subresource to the
// operation names for GET, PUT, DELETE, POST and HEAD (empty: not valid).
type byMethod struct{ get, put, del, post, head string }

var bucketSubresources = map[string]byMethod{
	"acl":               {get: "GetBucketAcl", put: "PutBucketAcl"},
	"cors":              {get: "GetBucketCors", put: "PutBucketCors", del: "DeleteBucketCors"},
	"delete":            {post: "DeleteObjects"},
	"encryption":        {get: "GetBucketEncryption", put: "PutBucketEncryption", del: "DeleteBucketEncryption"},
	"lifecycle":         {get: "GetBucketLifecycleConfiguration", put: "PutBucketLifecycleConfiguration", del: "DeleteBucketLifecycle"},
	"location":          {get: "GetBucketLocation"},
	"logging":           {get: "GetBucketLogging", put: "PutBucketLogging"},
	"notification":      {get: "GetBucketNotificationConfiguration", put: "PutBucketNotificationConfiguration"},
	"object-lock":       {get: "GetObjectLockConfiguration", put: "PutObjectLockConfiguration"},
	"ownershipControls": {get: "GetBucketOwnershipControls", put: "PutBucketOwnershipControls", del: "DeleteBucketOwnershipControls"},
	"policy":            {get: "GetBucketPolicy", put: "PutBucketPolicy", del: "DeleteBucketPolicy"},
	"policyStatus":      {get: "GetBucketPolicyStatus"},
	"publicAccessBlock": {get: "GetPublicAccessBlock", put: "PutPublicAccessBlock", del: "DeletePublicAccessBlock"},
	"replication":       {get: "GetBucketReplication", put: "PutBucketReplication", del: "DeleteBucketReplication"},
	"requestPayment":    {get: "GetBucketRequestPayment", put: "PutBucketRequestPayment"},
	"tagging":           {get: "GetBucketTagging", put: "PutBucketTagging", del: "DeleteBucketTagging"},
	"uploads":           {get: "ListMultipartUploads"},
	"versioning":        {get: "GetBucketVersioning", put: "PutBucketVersioning"},
	"versions":          {get: "ListObjectVersions"},
	"website":           {get: "GetBucketWebsite", put: "PutBucketWebsite", del: "DeleteBucketWebsite"},
}

var objectSubresources = map[string]byMethod{
	"acl":        {get: "GetObjectAcl", put: "PutObjectAcl"},
	"attributes": {get: "GetObjectAttributes"},
	"legal-hold": {get: "GetObjectLegalHold", put: "PutObjectLegalHold"},
	"restore":    {post: "RestoreObject"},
	"retention":  {get: "GetObjectRetention", put: "PutObjectRetention"},
	"select":     {post: "SelectObjectContent"},
	"tagging":    {get: "GetObjectTagging", put: "PutObjectTagging", del: "DeleteObjectTagging"},
	"torrent":    {get: "GetObjectTorrent"},
}

func (m byMethod) of(method string) string {
	switch method {
	case http.MethodGet:
		return m.get
	case http.MethodPut:
		return m.put
	case http.MethodDelete:
		return m.del
	case http.MethodPost:
		return m.post
	case http.MethodHead:
		return m.head
	}
	return ""
}

// Name returns the S3 operation of r, or "Unknown".
func Name(r Request) string {
	switch {
	case r.Bucket == "":
		if r.Method == http.MethodGet {
			return "ListBuckets"
		}
	case r.Key == "":
		return bucketOperation(r)
	default:
		return objectOperation(r)
	}
	return "Unknown"
}

func bucketOperation(r Request) string {
	if op, found := subresourceOperation(r, bucketSubresources); found {
		return op
	}
	switch r.Method {
	case http.MethodGet:
		if r.Query.Get("list-type") == "2" {
			return "ListObjectsV2"
		}
		return "ListObjects"
	case http.MethodHead:
		return "HeadBucket"
	case http.MethodPut:
		return "CreateBucket"
	case http.MethodDelete:
		return "DeleteBucket"
	}
	return "Unknown"
}

func objectOperation(r Request) string {
	uploadID := r.Query.Has("uploadId")
	switch {
	case r.Method == http.MethodPut && uploadID && r.Query.Has("partNumber") && r.CopySource:
		return "UploadPartCopy"
	case r.Method == http.MethodPut && uploadID && r.Query.Has("partNumber"):
		return "UploadPart"
	case r.Method == http.MethodPost && r.Query.Has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPost && uploadID:
		return "CompleteMultipartUpload"
	case r.Method == http.MethodDelete && uploadID:
		return "AbortMultipartUpload"
	case r.Method == http.MethodGet && uploadID:
		return "ListParts"
	}
	if op, found := subresourceOperation(r, objectSubresources); found {
		return op
	}
	switch r.Method {
	case http.MethodGet:
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	case http.MethodPut:
		if r.CopySource {
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodDelete:
		return "DeleteObject"
	}
	return "Unknown"
}

// Access is one request's claim on a bucket, as authorization callables
// see it: who, which bucket, and (for identity-aware callables) how.
type Access struct {
	Token     string // the client's access key id
	Bucket    string
	Method    string
	Key       string // the object key, or the prefix of a listing
	Operation string // GetObject, PutObject, ListObjectsV2, ...
}

// BucketOnly is a with only the token and bucket kept: the cache key of
// callables that decide per bucket.
func (a Access) BucketOnly() Access { return Access{Token: a.Token, Bucket: a.Bucket} }

// subresourceOperation names the operation of the one subresource in the
// query that applies to the method. Several at once (?acl&tagging) name no
// single operation: "Unknown", whatever order the query or a map gives
// them, so that a validator never sees one name while S3 runs another.
func subresourceOperation(r Request, subresources map[string]byMethod) (string, bool) {
	found := ""
	for sub, ops := range subresources {
		if !r.Query.Has(sub) {
			continue
		}
		if op := ops.of(r.Method); op != "" {
			if found != "" {
				return "Unknown", true
			}
			found = op
		}
	}
	return found, found != ""
}
