package config

import (
	"strings"
	"testing"
)

func TestUploadFraming(t *testing.T) {
	entry := func(framing string) string {
		field := ""
		if framing != "" {
			field = `, "upload_framing": "` + framing + `"`
		}
		return `{"cos_map": {"b": {"host": "h", "port": 1, "access_key": "a", "secret_key": "s"` + field + `}}, "http_port": 0}`
	}
	for framing, plain := range map[string]bool{"": false, FramingAWSChunked: false, FramingPlain: true} {
		c, err := Parse([]byte(entry(framing)))
		if err != nil {
			t.Fatalf("upload_framing %q: %v", framing, err)
		}
		b := c.CosMap["b"]
		if b.PlainUploads() != plain || (framing == "" && b.UploadFraming != FramingAWSChunked) {
			t.Errorf("upload_framing %q: got %+v", framing, b)
		}
	}
	for _, bad := range []string{"Plain", "chunked", "aws_chunked", " plain"} {
		_, err := Parse([]byte(entry(bad)))
		if err == nil || !strings.Contains(err.Error(), `cos_map["b"]: upload_framing`) {
			t.Errorf("upload_framing %q: want a refusal naming the bucket, got %v", bad, err)
		}
	}
}
