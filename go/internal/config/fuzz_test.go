package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary JSON to the configuration parser. It must
// never panic; what it accepts must be normalized (defaults filled, every
// value in range, skip_signature_validation only on loopback unless
// allowed); normalizing is idempotent (the accepted config, written back
// as JSON, parses to itself); and no error message quotes a secret (a
// bucket's access_key, secret_key or api_key, or a keystore secret).
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"cos_map": {"b": {"host": "s3.example", "port": 443, "access_key": "a", "secret_key": "s"}}, "http_port": 0}`))
	f.Add([]byte(`{"http_port": 8080, "https_port": 8443, "tls_cert_path": "c", "tls_key_path": "k", "verify": "/ca.pem",
		"hmac_keystore": {"AK": "SK"}, "virtual_host_domains": ["S3.Example.COM."], "connect_to": {"a:1": "b:2"},
		"log_format": "json", "log_level": "debug", "metrics": false, "threads": 4, "cache_size": 10}`))
	f.Add([]byte(`{"http_port": 1, "bind": "0.0.0.0", "skip_signature_validation": true}`))
	f.Add([]byte(`{"http_port": 1, "bind": "::", "skip_signature_validation": true, "allow_unverified_on_network": true}`))
	f.Add([]byte(`{"cos_map": {"a": {"port": 99999, "scheme": "ftp", "api_key": "secret-api-key"}, "b": null}, "verify": false}`))
	f.Add([]byte(`{"http_port": -1, "iam_url": "ftp://x", "client_header_timeout": 1e309, "validator": 18446744073709551615}`))
	f.Add([]byte(`{"cos_map": {"b": {"host": "h", "port": 1, "secret_key": "only-the-secret", "ttl": -5}}, "http_port": 0}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"http_port": 0, "hmac_keystore": {"": "x"}}`))
	f.Add([]byte(`{"http_port": 0, "admin_port": 0, "admin_bind": "::1", "max_callable_calls": 2, "hmac_fetcher_ttl": 0}`))
	f.Add([]byte(`{"http_port": 0, "admin_port": 70000, "max_callable_calls": -3, "hmac_fetcher_ttl": 86401, "htp_port": 1}`))
	f.Add([]byte(`{"http_port": 0, "cos_map": {"b": {"host": "h", "port": 1, "acess_key": "a", "secret_key": "s"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		checkNoSecretInError(t, data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse failed (%v) but returned a config", err)
			}
			return
		}
		checkNormalized(t, c)
		again, err := Parse(marshalConfig(t, c))
		if err != nil {
			t.Fatalf("an accepted config does not parse again: %v\n%s", err, marshalConfig(t, c))
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("normalizing is not idempotent:\n%+v\n%+v", c, again)
		}
	})
}

func checkNormalized(t *testing.T, c *Config) {
	t.Helper()
	if c.HTTPPort == nil && c.HTTPSPort == nil {
		t.Fatal("accepted a config without a port")
	}
	for _, p := range []*int{c.HTTPPort, c.HTTPSPort} {
		if p != nil && (*p < 0 || *p > 65535) {
			t.Fatalf("accepted port %d", *p)
		}
	}
	if c.HTTPSPort != nil && (c.TLSCertPath == "" || c.TLSKeyPath == "") {
		t.Fatal("accepted https_port without TLS files")
	}
	if c.Bind == "" || c.Threads < 1 || c.CacheSize < 1 || c.IAMURL == "" {
		t.Fatalf("defaults not filled: bind %q threads %d cache %d iam %q", c.Bind, c.Threads, c.CacheSize, c.IAMURL)
	}
	if c.SkipSignatureValidation && !c.AllowUnverifiedOnNetwork && !IsLoopback(c.Bind) {
		t.Fatalf("accepted skip_signature_validation on %q without allow_unverified_on_network", c.Bind)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		t.Fatalf("log_format %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		t.Fatalf("log_level %q", c.LogLevel)
	}
	for _, d := range c.VirtualHostDomains {
		if d == "" || d != strings.ToLower(strings.Trim(d, ".")) || strings.ContainsAny(d, "/: ") {
			t.Fatalf("virtual host domain %q not normalized", d)
		}
	}
	for ak, sk := range c.HMACKeystore {
		if ak == "" || sk == "" {
			t.Fatal("accepted an empty keystore entry")
		}
	}
	if c.MaxCallableCalls < 1 || c.HMACFetcherTTL() < 0 || c.HMACFetcherTTL() > MaxHMACFetcherTTLSeconds*time.Second ||
		c.AdminBind == "" || (c.AdminPort != nil && (*c.AdminPort < 0 || *c.AdminPort > 65535)) {
		t.Fatalf("control plane: calls %d, ttl %v, admin %q %v", c.MaxCallableCalls, c.HMACFetcherTTL(), c.AdminBind, c.AdminPort)
	}
	if c.CallbackTimeout() <= 0 {
		t.Fatalf("callback timeout %v", c.CallbackTimeout())
	}
	to := c.Timeouts()
	if to.ClientHeader <= 0 || to.ClientIdle <= 0 || to.Backend <= 0 {
		t.Fatalf("timeouts %+v", to)
	}
	for name, b := range c.CosMap {
		if b == nil || b.Host == "" || b.Port < 1 || b.Port > 65535 || b.Region == "" {
			t.Fatalf("cos_map[%q] accepted as %+v", name, b)
		}
		if (b.Scheme != "http" && b.Scheme != "https") || (b.AddressingStyle != VirtualStyle && b.AddressingStyle != PathStyle) {
			t.Fatalf("cos_map[%q]: scheme %q, addressing %q", name, b.Scheme, b.AddressingStyle)
		}
		if b.TTL() < 0 || (b.AccessKey == "") != (b.SecretKey == "") {
			t.Fatalf("cos_map[%q]: ttl %v, half an HMAC pair", name, b.TTL())
		}
		if !b.HasHMAC() && b.APIKey == "" && c.BucketCredsFetcher == nil {
			t.Fatalf("cos_map[%q] has no credentials", name)
		}
		if b.Endpoint() == "" {
			t.Fatalf("cos_map[%q] has no endpoint", name)
		}
	}
}

// marshalConfig writes c back in the form Parse reads (Verify has its own
// JSON form: true, false or a path).
func marshalConfig(t *testing.T, c *Config) []byte {
	t.Helper()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // callable ids are uint64: no float64 on the way
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	switch {
	case c.Verify.CABundle != "":
		doc["verify"] = c.Verify.CABundle
	default:
		doc["verify"] = !c.Verify.Skip
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return out
}

// checkNoSecretInError replaces every secret of the document with a marker
// no message template contains, parses it, and fails if a marker shows up
// in the error.
func checkNoSecretInError(t *testing.T, data []byte) {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return
	}
	n := 0
	marker := func() string { n++; return fmt.Sprintf("SeCrEt%dMaRkEr", n) }
	if buckets, ok := doc["cos_map"].(map[string]any); ok {
		for _, entry := range buckets {
			if e, ok := entry.(map[string]any); ok {
				for _, key := range []string{"access_key", "secret_key", "api_key"} {
					if _, ok := e[key].(string); ok {
						e[key] = marker()
					}
				}
			}
		}
	}
	if ks, ok := doc["hmac_keystore"].(map[string]any); ok {
		for ak, sk := range ks {
			if _, ok := sk.(string); ok {
				ks[ak] = marker()
			}
		}
	}
	if n == 0 {
		return
	}
	marked, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if _, err := Parse(marked); err != nil && strings.Contains(strings.ToLower(err.Error()), "marker") {
		t.Fatalf("an error quotes a secret: %v", err)
	}
}
