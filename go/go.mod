module github.com/object-storage-proxy/osp

go 1.26.8

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/hashicorp/golang-lru/v2 v2.0.7
	golang.org/x/sync v0.25.0
)

require github.com/aws/smithy-go v1.28.9 // indirect
