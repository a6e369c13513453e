package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseLimits(t *testing.T) {
	c, err := Parse([]byte(`{"http_port": 0, "state_url": "redis://:pw@redis.internal:6379/2",
		"rate_limit": {"requests_per_second": 2.5}, "rate_limits": {"AK": {"download_bytes_per_second": 10}},
		"presign_max_uses": 1, "presign_max_expires": 60,
		"cos_map": {"b": {"host": "h", "port": 1, "api_key": "k", "presign_max_uses": 3}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimit.Burst != 3 {
		t.Errorf("a rate without a burst gets one second's requests, rounded up: %d", c.RateLimit.Burst)
	}
	if c.PresignLimitsWhenStateDown != StateDownDeny || c.RateLimitsWhenStateDown != StateDownAllow {
		t.Errorf("policies: %q %q", c.PresignLimitsWhenStateDown, c.RateLimitsWhenStateDown)
	}
	if uses, expires := c.PresignLimits(c.CosMap["b"]); uses != 3 || expires != time.Minute {
		t.Errorf("the bucket's uses and the server's expiry: %d %v", uses, expires)
	}
	if got := c.RedactedStateURL(); got != "redis://redis.internal:6379/2" {
		t.Errorf("RedactedStateURL = %q", got)
	}
}

func TestParseRefusesBadLimits(t *testing.T) {
	for doc, want := range map[string]string{
		`{"rate_limit": {"request_per_second": 1}}`:                                            `unknown key "request_per_second"`,
		`{"rate_limits": {"AK": {"burst": 2}}}`:                                                "burst is given without requests_per_second",
		`{"rate_limit": {"requests_per_second": -1}}`:                                          "requests_per_second -1 is out of range",
		`{"presign_limits_when_state_down": "open"}`:                                           "is not deny or allow",
		`{"presign_max_expires": 604801}`:                                                      "presign_max_expires 604801 is out of range",
		`{"state_url": "http://u:secretpw@h:1/0"}`:                                             `state_url scheme "http"`,
		`{"state_url": "redis://u:secretpw@h:bad/0"}`:                                          "state_url is not a valid URL",
		`{"cos_map": {"b": {"host": "h", "port": 1, "api_key": "k", "presign_max_uses": -1}}}`: "presign_max_uses -1",
	} {
		_, err := Parse([]byte(`{"http_port": 0, ` + strings.TrimPrefix(doc, "{")))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", doc, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: the error shows the password: %v", doc, err)
		}
	}
}
