package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/object-storage-proxy/osp/internal/s3op"
)

func TestAccessCacheKeys(t *testing.T) {
	ctx := context.Background()
	get := s3op.Access{Token: "t", Bucket: "b", Method: "GET", Key: "k1", Operation: "GetObject"}
	put := s3op.Access{Token: "t", Bucket: "b", Method: "PUT", Key: "k2", Operation: "PutObject"}
	other := s3op.Access{Token: "u", Bucket: "b", Method: "GET", Key: "k1", Operation: "GetObject"}
	for _, identity := range []bool{false, true} {
		var asked []s3op.Access
		c := NewAccessCache("test", 16, identity, func(_ context.Context, a s3op.Access) (int, error) {
			asked = append(asked, a)
			return len(asked), nil
		})
		for _, a := range []s3op.Access{get, put, other, get} {
			if _, err := c.Get(ctx, a, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		want := []s3op.Access{get.BucketOnly(), other.BucketOnly()} // per (token, bucket)
		if identity {
			want = []s3op.Access{get, put, other}
		}
		if len(asked) != len(want) || c.Identity() != identity {
			t.Fatalf("identity %v: asked %v, want %v", identity, asked, want)
		}
		for i := range want {
			if asked[i] != want[i] {
				t.Fatalf("identity %v: asked %v, want %v", identity, asked, want)
			}
		}
	}
}

func TestAccessCacheKeepsNoFailure(t *testing.T) {
	calls := 0
	c := NewAccessCache("test", 16, false, func(context.Context, s3op.Access) (bool, error) {
		calls++
		return false, errors.New("down")
	})
	a := s3op.Access{Token: "t", Bucket: "b"}
	for range 2 {
		if _, err := c.Get(context.Background(), a, time.Minute); err == nil {
			t.Fatal("a failure must be returned")
		}
	}
	if calls != 2 {
		t.Fatalf("a failure was cached: %d calls", calls)
	}
}
