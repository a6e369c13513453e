package config

import (
	"fmt"
	"strconv"
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

func TestSkipSignatureValidationNeedsLoopbackOrExplicitConsent(t *testing.T) {
	doc := func(bind string, skip, allow bool) []byte {
		return []byte(fmt.Sprintf(`{"http_port": 0, "bind": %q, "skip_signature_validation": %t, "allow_unverified_on_network": %t}`,
			bind, skip, allow))
	}
	loopback := []string{"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost", "LocalHost", "localhost.", "::ffff:127.0.0.1"}
	network := []string{"", "0.0.0.0", "::", "[::]", "192.168.1.10", "10.0.0.1", "203.0.113.7", "2001:db8::1",
		"fe80::1%eth0", "example.com", "localhost.example.com", "127.0.0.1.example.com", "0", "128.0.0.1"}
	for _, bind := range loopback {
		if _, err := Parse(doc(bind, true, false)); err != nil {
			t.Errorf("skip_signature_validation on loopback %q refused: %v", bind, err)
		}
	}
	for _, bind := range network {
		want := bind
		if want == "" {
			want = "0.0.0.0" // the default bind
		}
		_, err := Parse(doc(bind, true, false))
		if err == nil {
			t.Errorf("skip_signature_validation on %q accepted without allow_unverified_on_network", bind)
			continue
		}
		for _, part := range []string{"skip_signature_validation", "allow_unverified_on_network", "not a loopback address", strconv.Quote(want)} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("bind %q: error lacks %q: %v", bind, part, err)
			}
		}
		c, err := Parse(doc(bind, true, true))
		if err != nil {
			t.Errorf("bind %q with allow_unverified_on_network refused: %v", bind, err)
		} else if !c.AllowUnverifiedOnNetwork || !c.SkipSignatureValidation {
			t.Errorf("bind %q: flags not kept: %+v", bind, c)
		}
		if _, err := Parse(doc(bind, false, false)); err != nil {
			t.Errorf("bind %q without skip_signature_validation refused: %v", bind, err)
		}
	}
	// Problems are all reported: this one beside another.
	_, err := Parse([]byte(`{"bind": "0.0.0.0", "skip_signature_validation": true}`))
	if err == nil || !strings.Contains(err.Error(), "no port configured") || !strings.Contains(err.Error(), "allow_unverified_on_network") {
		t.Errorf("want both problems reported, got %v", err)
	}
	// A Config built without Parse is checked the same way.
	c := &Config{Bind: "0.0.0.0", SkipSignatureValidation: true}
	if c.CheckUnverifiedBind() == nil {
		t.Error("CheckUnverifiedBind accepted 0.0.0.0")
	}
	c.AllowUnverifiedOnNetwork = true
	if err := c.CheckUnverifiedBind(); err != nil {
		t.Errorf("CheckUnverifiedBind with consent: %v", err)
	}
}

func TestTimeoutsOutOfRangeAreRefused(t *testing.T) {
	for _, name := range []string{"callback_timeout", "client_header_timeout", "client_idle_timeout", "backend_timeout"} {
		// 1e10 s overflows time.Duration: it used to wrap to a negative
		// timeout (for client_header_timeout: none at all).
		for _, v := range []string{"1e10", "3601", "1e300"} {
			_, err := Parse([]byte(`{"http_port": 0, "` + name + `": ` + v + `}`))
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "out of range") {
				t.Errorf("%s=%s: got %v, want out of range", name, v, err)
			}
		}
		c, err := Parse([]byte(`{"http_port": 0, "` + name + `": 3600}`))
		if err != nil {
			t.Fatalf("%s=3600: %v", name, err)
		}
		to := c.Timeouts()
		if c.CallbackTimeout() <= 0 || to.ClientHeader <= 0 || to.ClientIdle <= 0 || to.Backend <= 0 {
			t.Errorf("%s=3600 gives %v %+v", name, c.CallbackTimeout(), to)
		}
	}
}

func TestParseRefusesUnknownKeys(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"http_port": 1, "htp_port": 2}`, `unknown key "htp_port"`},
		{`{"http_port": 1, "cos_map": {"data": {"host": "h", "port": 1, "acess_key": "a", "secret_key": "s"}}}`,
			`cos_map["data"]: unknown key "acess_key"`},
		{`{"http_port": 1, "cos_map": {"data": {"host": "h", "port": 1, "api_key": "k", "tll": 5}}}`,
			`cos_map["data"]: unknown key "tll"`},
		{`{"http_port": 1} {"http_port": 2}`, `trailing data`},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %s", tc.doc, err, tc.want)
		}
	}
}

func TestControlPlaneSettings(t *testing.T) {
	c, err := Parse([]byte(`{"http_port": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxCallableCalls != DefaultMaxCallableCalls || c.HMACFetcherTTL() != DefaultHMACFetcherTTL ||
		c.AdminPort != nil || c.AdminBind != DefaultAdminBind {
		t.Fatalf("defaults: %d %v %v %q", c.MaxCallableCalls, c.HMACFetcherTTL(), c.AdminPort, c.AdminBind)
	}
	c, err = Parse([]byte(`{"http_port": 1, "max_callable_calls": 2, "hmac_fetcher_ttl": 0, "admin_port": 0, "admin_bind": "::1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxCallableCalls != 2 || c.HMACFetcherTTL() != 0 || c.AdminPort == nil || *c.AdminPort != 0 || c.AdminBind != "::1" {
		t.Fatalf("settings: %+v", c)
	}
	_, err = Parse([]byte(`{"http_port": 1, "max_callable_calls": -1, "hmac_fetcher_ttl": -1, "admin_port": 65536}`))
	for _, want := range []string{"max_callable_calls -1", "hmac_fetcher_ttl -1", "admin_port 65536"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	a, _ := Parse([]byte(`{"http_port": 1, "admin_port": 9}`))
	b, _ := Parse([]byte(`{"http_port": 1, "admin_port": 10}`))
	if a.SameListeners(b) {
		t.Error("a reload must not move the admin listener")
	}
}
