package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseFillsDefaults(t *testing.T) {
	c, err := Parse([]byte(`{"cos_map": {"b": {"host": "s3.example", "port": 443, "access_key": "a", "secret_key": "s"}}, "http_port": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	b := c.CosMap["b"]
	if b.Region != "us-east-1" || b.Scheme != "https" || b.AddressingStyle != VirtualStyle || b.TTL() != DefaultTTL {
		t.Fatalf("defaults not applied: %+v", b)
	}
	if b.Endpoint() != "s3.example" || c.Bind != "0.0.0.0" || c.Verify.Skip {
		t.Fatalf("endpoint %q bind %q", b.Endpoint(), c.Bind)
	}
	b.Port, b.Scheme = 8443, "https"
	if b.Endpoint() != "s3.example:8443" {
		t.Fatalf("endpoint %q", b.Endpoint())
	}
	zero := 0
	b.TTLSeconds = &zero
	if b.TTL() != 0*time.Second {
		t.Fatal("ttl 0 must mean no caching")
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`{"cos_map": {
		"a": {"port": 99999, "scheme": "ftp"},
		"b": {"host": "h", "port": 1, "access_key": "only-half"}},
		"verify": "/ca.pem"}`))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"no port configured", `cos_map["a"]: missing host`, `cos_map["a"]: port 99999`,
		`cos_map["a"]: scheme "ftp"`, `cos_map["b"]: access_key and secret_key go together`, `cos_map["a"]: no credentials`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "only-half") {
		t.Error("error message leaks a credential")
	}
}

func TestVerifyForms(t *testing.T) {
	for in, want := range map[string]Verify{`true`: {}, `null`: {}, `false`: {Skip: true}, `"/etc/ca.pem"`: {CABundle: "/etc/ca.pem"}} {
		c, err := Parse([]byte(`{"http_port": 1, "verify": ` + in + `}`))
		if err != nil || c.Verify != want {
			t.Errorf("verify %s: got %+v, %v", in, c.Verify, err)
		}
	}
}
