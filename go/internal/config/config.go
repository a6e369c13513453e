// Package config is the proxy's configuration as the C API receives it:
// a JSON document (see include/osp.h), built by the Python package's
// object_storage_proxy/config.py. The defaults of every optional setting
// are written here only (defaults.go); libosp hands them to host languages
// through osp_config_defaults.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Addressing styles for reaching a backend.
const (
	VirtualStyle = "virtual"
	PathStyle    = "path"
)

// Upload framings: how bodies the backend cannot check by a signed hash
// (UNSIGNED-PAYLOAD, aws-chunked from the client) go to an HMAC backend.
const (
	// FramingAWSChunked sends them as the proxy's own
	// STREAMING-UNSIGNED-PAYLOAD-TRAILER body (the default): complete only
	// with its final chunk, which goes once the body is verified.
	FramingAWSChunked = "aws-chunked"
	// FramingPlain sends them as plain bytes with the last byte held back
	// until the body is verified, for servers that refuse unsigned
	// aws-chunked without a trailer (SeaweedFS). Safe only with a backend
	// that refuses a body shorter than its Content-Length.
	FramingPlain = "plain"
)

// Bucket is one cos_map entry: where a bucket (or the buckets of a pattern,
// see patterns.go) lives and how to reach it.
type Bucket struct {
	Host            string `json:"host"`
	Port            int    `json:"port"`
	Region          string `json:"region"`
	Scheme          string `json:"scheme"`
	AddressingStyle string `json:"addressing_style"`
	AccessKey       string `json:"access_key"`
	SecretKey       string `json:"secret_key"`
	APIKey          string `json:"api_key"`
	TTLSeconds      *int   `json:"ttl"`
	UploadFraming   string `json:"upload_framing"`
	// PresignMaxUses and PresignMaxExpires override the server's for this
	// bucket (nil: the server's); see Config.
	PresignMaxUses    *int `json:"presign_max_uses"`
	PresignMaxExpires *int `json:"presign_max_expires"`
}

// TTL is how long answers about this bucket may be cached.
func (b *Bucket) TTL() time.Duration {
	if b.TTLSeconds == nil {
		return DefaultTTL
	}
	return time.Duration(*b.TTLSeconds) * time.Second
}

// PlainUploads reports whether bodies the proxy verifies go to this
// bucket's backend as plain bytes rather than in aws-chunked framing.
func (b *Bucket) PlainUploads() bool { return b.UploadFraming == FramingPlain }

// HasHMAC reports whether the bucket carries its own HMAC pair.
func (b *Bucket) HasHMAC() bool { return b.AccessKey != "" && b.SecretKey != "" }

// Endpoint is host[:port] as it goes in a URL and a Host header; the port
// is left out when it is the scheme's default, as signers expect.
func (b *Bucket) Endpoint() string {
	if (b.Scheme == "https" && b.Port == 443) || (b.Scheme == "http" && b.Port == 80) {
		return b.Host
	}
	return net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
}

// Config is the whole server configuration.
type Config struct {
	CosMap                  map[string]*Bucket `json:"cos_map"`
	HTTPPort                *int               `json:"http_port"`
	HTTPSPort               *int               `json:"https_port"`
	Bind                    string             `json:"bind"`
	TLSCertPath             string             `json:"tls_cert_path"`
	TLSKeyPath              string             `json:"tls_key_path"`
	Verify                  Verify             `json:"verify"`
	HMACKeystore            map[string]string  `json:"hmac_keystore"`
	SkipSignatureValidation bool               `json:"skip_signature_validation"`
	Threads                 int                `json:"threads"`
	Validator               *uint64            `json:"validator"`
	BucketCredsFetcher      *uint64            `json:"bucket_creds_fetcher"`
	HMACFetcher             *uint64            `json:"hmac_fetcher"`
	// AllowUnverifiedOnNetwork lets SkipSignatureValidation run on a
	// listener bound to a non-loopback address; without it such a
	// configuration is refused (see CheckUnverifiedBind).
	AllowUnverifiedOnNetwork bool `json:"allow_unverified_on_network"`
	// VirtualHostDomains are the proxy's domains for virtual-hosted
	// requests (bucket.<domain>), lower case.
	VirtualHostDomains []string `json:"virtual_host_domains"`
	// ValidatorIdentity and BucketCredsFetcherIdentity say whether those
	// callables take method, key and operation too.
	ValidatorIdentity          bool `json:"validator_identity"`
	BucketCredsFetcherIdentity bool `json:"bucket_creds_fetcher_identity"`
	// IAMURL is IBM Cloud IAM, where API keys become bearer tokens.
	IAMURL string `json:"iam_url"`
	// ConnectTo dials another address for a backend "host:port", as curl's
	// --connect-to; TLS still verifies the configured host.
	ConnectTo map[string]string `json:"connect_to"`
	// CallbackTimeoutSeconds bounds one call of a host callable.
	CallbackTimeoutSeconds float64 `json:"callback_timeout"`
	// CacheSize bounds each cache (validator, credentials, secrets, tokens).
	CacheSize int `json:"cache_size"`
	// LogFormat is "text" or "json"; LogLevel "debug", "info", "warn" or
	// "error".
	LogFormat string `json:"log_format"`
	LogLevel  string `json:"log_level"`
	// TrustedForwardedHost takes X-Forwarded-Host as the Host the client
	// signed (behind a load balancer that rewrites Host).
	TrustedForwardedHost bool `json:"trusted_forwarded_host"`
	// Metrics serves /metrics on the admin listener (default true).
	Metrics *bool `json:"metrics"`
	// AdminPort is the port of the admin listener (healthz, readyz,
	// metrics), bound to AdminBind; nil means no admin listener. The S3
	// listeners never answer admin paths: they share no namespace with S3.
	AdminPort *int   `json:"admin_port"`
	AdminBind string `json:"admin_bind"`
	// MaxCallableCalls bounds the host callable calls running at once for
	// this server (each holds an OS thread until the callable returns).
	MaxCallableCalls int `json:"max_callable_calls"`
	// HMACFetcherTTLSeconds is how long a secret hmac_fetcher returned is
	// kept (nil: DefaultHMACFetcherTTL; 0: not kept).
	HMACFetcherTTLSeconds *int `json:"hmac_fetcher_ttl"`
	// Timeouts in seconds: reading a client's request headers, keeping an
	// idle client connection, and waiting for a backend's response headers.
	ClientHeaderTimeoutSeconds float64 `json:"client_header_timeout"`
	ClientIdleTimeoutSeconds   float64 `json:"client_idle_timeout"`
	BackendTimeoutSeconds      float64 `json:"backend_timeout"`
	// The limits (docs/limits.md). StateURL says where their counts live:
	// "" in this process, redis:// or rediss:// in Redis, shared by a
	// fleet. Its password never appears in a message (RedactedStateURL).
	StateURL string `json:"state_url"`
	// PresignMaxUses serves a presigned URL at most this many times (0: no
	// limit); PresignMaxExpires refuses a presigned URL whose X-Amz-Expires
	// is longer (seconds; 0: S3's 7 days). A bucket may override both.
	PresignMaxUses    int `json:"presign_max_uses"`
	PresignMaxExpires int `json:"presign_max_expires"`
	// What the presigned use limits and the rate limits (requests and
	// bandwidth) do while the state store does not answer: "deny" or
	// "allow".
	PresignLimitsWhenStateDown string `json:"presign_limits_when_state_down"`
	RateLimitsWhenStateDown    string `json:"rate_limits_when_state_down"`
	// RateLimit is every client key's limit unless RateLimits or the
	// rate_limit_fetcher callable gives the key its own (nil: none).
	RateLimit        *RateLimit           `json:"rate_limit"`
	RateLimits       map[string]RateLimit `json:"rate_limits"`
	RateLimitFetcher *uint64              `json:"rate_limit_fetcher"`
}

// CheckUnverifiedBind refuses skip_signature_validation on a listener that
// binds a non-loopback address (0.0.0.0, ::, a LAN address or a host name
// other than localhost) unless allow_unverified_on_network says so: with
// signatures unchecked, anyone who can reach the proxy and knows (or
// guesses) an access key id gets that key's access.
func (c *Config) CheckUnverifiedBind() error {
	if !c.SkipSignatureValidation || c.AllowUnverifiedOnNetwork || IsLoopback(c.Bind) {
		return nil
	}
	return fmt.Errorf("config: skip_signature_validation is set but bind %q is not a loopback address: "+
		"anyone who can reach the proxy could use any access key id without its secret; "+
		"bind 127.0.0.1 (or ::1), or set allow_unverified_on_network to accept that risk", c.Bind)
}

// IsLoopback reports whether a bind address only listens on the loopback
// interface: an IP in 127.0.0.0/8 or ::1, or the name localhost. The
// unspecified addresses (0.0.0.0, ::) listen on every interface and are not
// loopback; neither is any other host name, whatever it resolves to now.
func IsLoopback(bind string) bool {
	host := strings.TrimSuffix(strings.TrimPrefix(bind, "["), "]")
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Timeouts are the client and backend timeouts, defaults filled in.
type Timeouts struct {
	ClientHeader, ClientIdle, Backend time.Duration
}

// Timeouts returns the configured timeouts.
func (c *Config) Timeouts() Timeouts {
	return Timeouts{
		ClientHeader: orDefault(c.ClientHeaderTimeoutSeconds, DefaultClientHeaderTimeout),
		ClientIdle:   orDefault(c.ClientIdleTimeoutSeconds, DefaultClientIdleTimeout),
		Backend:      orDefault(c.BackendTimeoutSeconds, DefaultBackendTimeout),
	}
}

// orDefault is seconds as a duration, or def for a setting left out (0;
// normalize also sends a negative one here).
func orDefault(seconds float64, def time.Duration) time.Duration {
	if seconds <= 0 {
		return def
	}
	return time.Duration(seconds * float64(time.Second))
}

// fillTimeouts sets each timeout left out (0, or negative) to its default,
// so that a parsed Config holds the values in effect.
func (c *Config) fillTimeouts() {
	for _, t := range []struct {
		seconds *float64
		def     time.Duration
	}{
		{&c.CallbackTimeoutSeconds, DefaultCallbackTimeout},
		{&c.ClientHeaderTimeoutSeconds, DefaultClientHeaderTimeout},
		{&c.ClientIdleTimeoutSeconds, DefaultClientIdleTimeout},
		{&c.BackendTimeoutSeconds, DefaultBackendTimeout},
	} {
		if *t.seconds <= 0 {
			*t.seconds = t.def.Seconds()
		}
	}
}

// MetricsEnabled reports whether the admin listener serves /metrics.
func (c *Config) MetricsEnabled() bool { return c.Metrics == nil || *c.Metrics }

// SameListeners reports whether o binds exactly what c binds (the admin
// listener too), with the same client timeouts: a reload cannot change
// listeners.
func (c *Config) SameListeners(o *Config) bool {
	samePort := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	ct, ot := c.Timeouts(), o.Timeouts()
	return samePort(c.HTTPPort, o.HTTPPort) && samePort(c.HTTPSPort, o.HTTPSPort) && c.Bind == o.Bind &&
		c.TLSCertPath == o.TLSCertPath && c.TLSKeyPath == o.TLSKeyPath &&
		samePort(c.AdminPort, o.AdminPort) && c.AdminBind == o.AdminBind &&
		ct.ClientHeader == ot.ClientHeader && ct.ClientIdle == ot.ClientIdle
}

// MaxTimeoutSeconds bounds every timeout setting.
const MaxTimeoutSeconds = 3600

// MaxHMACFetcherTTLSeconds (a day) keeps the TTL far inside
// time.Duration's range; a revocation should not wait longer anyway.
const MaxHMACFetcherTTLSeconds = 86400

// HMACFetcherTTL is how long a secret the hmac_fetcher returned is kept.
func (c *Config) HMACFetcherTTL() time.Duration {
	if c.HMACFetcherTTLSeconds == nil {
		return DefaultHMACFetcherTTL
	}
	return time.Duration(*c.HMACFetcherTTLSeconds) * time.Second
}

// CallbackTimeout is how long one host callable may run.
func (c *Config) CallbackTimeout() time.Duration {
	return orDefault(c.CallbackTimeoutSeconds, DefaultCallbackTimeout)
}

// Verify says how backend TLS certificates are checked: by the system
// roots, not at all, or against a CA bundle file.
type Verify struct {
	Skip     bool
	CABundle string
}

// UnmarshalJSON accepts true, false, null or a CA bundle path.
func (v *Verify) UnmarshalJSON(data []byte) error {
	var b *bool
	if err := json.Unmarshal(data, &b); err == nil {
		v.Skip = b != nil && !*b
		return nil
	}
	var path string
	if err := json.Unmarshal(data, &path); err != nil {
		return errors.New("verify: want true, false or a CA bundle path")
	}
	v.CABundle = path
	return nil
}

// document is a Config whose cos_map entries are decoded one by one, so
// that an unknown key in one is reported with its bucket's name.
type document struct {
	*Config
	CosMap map[string]json.RawMessage `json:"cos_map"`
}

// Parse decodes and checks a configuration, filling defaults. Unknown keys
// are refused, at the top and in cos_map entries: a typo (a host language
// that is not the Python package has no other check) must not silently drop
// a setting or a bucket's credentials. Every problem is reported, not just
// the first.
func Parse(data []byte) (*Config, error) {
	var c Config
	doc := document{Config: &c}
	if err := strictDecode(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var errs []error
	if doc.CosMap != nil {
		c.CosMap = make(map[string]*Bucket, len(doc.CosMap))
	}
	for name, raw := range doc.CosMap {
		var b *Bucket
		if err := strictDecode(raw, &b); err != nil {
			errs = append(errs, fmt.Errorf("config: cos_map[%q]: %w", name, err))
			continue
		}
		c.CosMap[name] = b
	}
	if err := c.normalize(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// strictDecode decodes one JSON value into v, refusing unknown keys and
// anything after the value.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return unknownKey(err)
	}
	if dec.More() {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// unknownKey words encoding/json's unknown-field error as the config's
// own ("json: unknown field \"x\"" names the key, never a value).
func unknownKey(err error) error {
	const prefix = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, prefix) {
		return fmt.Errorf("unknown key %s", strings.TrimPrefix(msg, prefix))
	}
	return err
}

func (c *Config) normalize() error {
	var errs []error
	if c.HTTPPort == nil && c.HTTPSPort == nil {
		errs = append(errs, errors.New("config: no port configured: set http_port or https_port"))
	}
	for name, p := range map[string]*int{"http_port": c.HTTPPort, "https_port": c.HTTPSPort} {
		if p != nil && (*p < 0 || *p > 65535) {
			errs = append(errs, fmt.Errorf("config: %s %d is out of range", name, *p))
		}
	}
	if c.HTTPSPort != nil && (c.TLSCertPath == "" || c.TLSKeyPath == "") {
		errs = append(errs, errors.New("config: https_port needs tls_cert_path and tls_key_path"))
	}
	if c.Bind == "" {
		c.Bind = DefaultBind
	}
	if err := c.CheckUnverifiedBind(); err != nil {
		errs = append(errs, err)
	}
	for i, d := range c.VirtualHostDomains {
		d = strings.ToLower(strings.Trim(d, "."))
		if d == "" || strings.ContainsAny(d, "/: ") {
			errs = append(errs, fmt.Errorf("config: virtual_host_domains[%d] %q is not a domain name", i, c.VirtualHostDomains[i]))
		}
		c.VirtualHostDomains[i] = d
	}
	// Seconds beyond time.Duration's range would wrap around to a negative
	// duration: no client header timeout at all, or callables that time
	// out at once. The Python package allows at most an hour.
	for _, t := range []struct {
		name    string
		seconds float64
	}{
		{"callback_timeout", c.CallbackTimeoutSeconds},
		{"client_header_timeout", c.ClientHeaderTimeoutSeconds},
		{"client_idle_timeout", c.ClientIdleTimeoutSeconds},
		{"backend_timeout", c.BackendTimeoutSeconds},
	} {
		if t.seconds > MaxTimeoutSeconds {
			errs = append(errs, fmt.Errorf("config: %s %g is out of range (at most %d seconds)", t.name, t.seconds, MaxTimeoutSeconds))
		}
	}
	if c.Threads <= 0 {
		c.Threads = DefaultThreads
	}
	c.fillTimeouts()
	if c.Metrics == nil {
		enabled := DefaultMetrics
		c.Metrics = &enabled
	}
	if c.HMACFetcherTTLSeconds == nil {
		ttl := int(DefaultHMACFetcherTTL / time.Second)
		c.HMACFetcherTTLSeconds = &ttl
	}
	if c.CacheSize <= 0 {
		c.CacheSize = DefaultCacheSize
	}
	switch {
	case c.MaxCallableCalls == 0:
		c.MaxCallableCalls = DefaultMaxCallableCalls
	case c.MaxCallableCalls < 0:
		errs = append(errs, fmt.Errorf("config: max_callable_calls %d is negative", c.MaxCallableCalls))
	}
	if t := c.HMACFetcherTTLSeconds; t != nil && (*t < 0 || *t > MaxHMACFetcherTTLSeconds) {
		errs = append(errs, fmt.Errorf("config: hmac_fetcher_ttl %d is out of range (0-%d seconds)", *t, MaxHMACFetcherTTLSeconds))
	}
	if c.AdminPort != nil && (*c.AdminPort < 0 || *c.AdminPort > 65535) {
		errs = append(errs, fmt.Errorf("config: admin_port %d is out of range", *c.AdminPort))
	}
	if c.AdminBind == "" {
		c.AdminBind = DefaultAdminBind
	}
	switch c.LogFormat {
	case "":
		c.LogFormat = DefaultLogFormat
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("config: log_format %q is not text or json", c.LogFormat))
	}
	switch c.LogLevel {
	case "":
		c.LogLevel = DefaultLogLevel
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("config: log_level %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.IAMURL == "" {
		c.IAMURL = DefaultIAMURL
	}
	if u, err := url.Parse(c.IAMURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("config: iam_url %q is not an http(s) URL", c.IAMURL))
	}
	for from, to := range c.ConnectTo {
		for _, hostPort := range []string{from, to} {
			if _, _, err := net.SplitHostPort(hostPort); err != nil {
				errs = append(errs, fmt.Errorf("config: connect_to %q: %q is not host:port", from, hostPort))
			}
		}
	}
	names := make([]string, 0, len(c.CosMap))
	for name := range c.CosMap {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			errs = append(errs, errors.New("config: cos_map has an empty bucket name"))
			continue
		}
		if err := CheckPattern(name); err != nil {
			errs = append(errs, fmt.Errorf("config: cos_map[%q]: %w", name, err))
			continue
		}
		b := c.CosMap[name]
		if b == nil {
			errs = append(errs, fmt.Errorf("config: cos_map[%q] is empty", name))
			continue
		}
		errs = append(errs, b.normalize(name, c.BucketCredsFetcher != nil)...)
	}
	errs = append(errs, c.normalizeLimits()...)
	for ak, sk := range c.HMACKeystore {
		if ak == "" || sk == "" {
			errs = append(errs, errors.New("config: hmac_keystore has an empty access key or secret"))
			break
		}
	}
	return errors.Join(errs...)
}

func (b *Bucket) normalize(name string, haveFetcher bool) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: cos_map[%q]: "+format, append([]any{name}, args...)...))
	}
	if b.Host == "" {
		bad("missing host")
	}
	if b.Port <= 0 || b.Port > 65535 {
		bad("port %d is out of range", b.Port)
	}
	if b.Region == "" {
		b.Region = DefaultRegion
	}
	for _, c := range []struct {
		name    string
		value   *string
		def     string
		allowed []string
	}{
		{"scheme", &b.Scheme, DefaultScheme, []string{"http", "https"}},
		{"addressing_style", &b.AddressingStyle, DefaultAddressingStyle, []string{VirtualStyle, PathStyle}},
		{"upload_framing", &b.UploadFraming, DefaultUploadFraming, []string{FramingAWSChunked, FramingPlain}},
	} {
		if *c.value == "" {
			*c.value = c.def
		} else if !slices.Contains(c.allowed, *c.value) {
			bad("%s %q is not %s", c.name, *c.value, strings.Join(c.allowed, " or "))
		}
	}
	if (b.AccessKey == "") != (b.SecretKey == "") {
		bad("access_key and secret_key go together")
	}
	if !b.HasHMAC() && b.APIKey == "" && !haveFetcher {
		bad("no credentials (access_key/secret_key or api_key) and no bucket_creds_fetcher")
	}
	if b.TTLSeconds == nil {
		ttl := int(DefaultTTL / time.Second)
		b.TTLSeconds = &ttl
	} else if *b.TTLSeconds < 0 {
		bad("ttl %d is negative", *b.TTLSeconds)
	}
	if err := checkPresignLimits(b.PresignMaxUses, b.PresignMaxExpires); err != nil {
		bad("%v", err)
	}
	return errs
}
