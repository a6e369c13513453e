package config

import (
	"encoding/json"
	"time"
)

// The defaults of every optional setting: the only place they are written.
// The Python package does not repeat them; it reads them from libosp
// (osp_config_defaults, which returns DefaultsJSON), so a C host and a
// Python host get the same ones.
const (
	DefaultBind                = "0.0.0.0"
	DefaultThreads             = 1
	DefaultCallbackTimeout     = 10 * time.Second
	DefaultCacheSize           = 16384
	DefaultClientHeaderTimeout = 30 * time.Second
	DefaultClientIdleTimeout   = 120 * time.Second
	DefaultBackendTimeout      = 300 * time.Second
	DefaultLogFormat           = "text"
	DefaultLogLevel            = "info"
	DefaultIAMURL              = "https://iam.cloud.ibm.com"
	DefaultMetrics             = true
	DefaultAdminBind           = "127.0.0.1"
	DefaultMaxCallableCalls    = 32
	DefaultHMACFetcherTTL      = 300 * time.Second
	// A use limit is a security promise (a 1-use link must not become a
	// 2-use link while Redis is away); rates protect capacity, and denying
	// every request while Redis is away would make its outage the proxy's.
	DefaultPresignLimitsWhenStateDown = StateDownDeny
	DefaultRateLimitsWhenStateDown    = StateDownAllow

	// A cos_map entry's.
	DefaultRegion          = "us-east-1"
	DefaultScheme          = "https"
	DefaultAddressingStyle = VirtualStyle
	DefaultUploadFraming   = FramingAWSChunked
	// DefaultTTL is how long validator and credential answers are kept when
	// a bucket says nothing.
	DefaultTTL = 300 * time.Second
)

// Defaults is the configuration a document with no optional key gives:
// every setting at its default, no bucket, no port, no callable.
func Defaults() Config {
	metrics := DefaultMetrics
	hmacFetcherTTL := int(DefaultHMACFetcherTTL / time.Second)
	return Config{
		Bind:                       DefaultBind,
		Threads:                    DefaultThreads,
		CallbackTimeoutSeconds:     DefaultCallbackTimeout.Seconds(),
		CacheSize:                  DefaultCacheSize,
		ClientHeaderTimeoutSeconds: DefaultClientHeaderTimeout.Seconds(),
		ClientIdleTimeoutSeconds:   DefaultClientIdleTimeout.Seconds(),
		BackendTimeoutSeconds:      DefaultBackendTimeout.Seconds(),
		LogFormat:                  DefaultLogFormat,
		LogLevel:                   DefaultLogLevel,
		IAMURL:                     DefaultIAMURL,
		Metrics:                    &metrics,
		AdminBind:                  DefaultAdminBind,
		MaxCallableCalls:           DefaultMaxCallableCalls,
		HMACFetcherTTLSeconds:      &hmacFetcherTTL,
		PresignLimitsWhenStateDown: DefaultPresignLimitsWhenStateDown,
		RateLimitsWhenStateDown:    DefaultRateLimitsWhenStateDown,
	}
}

// DefaultBucket is a cos_map entry with no optional key.
func DefaultBucket() Bucket {
	ttl := int(DefaultTTL / time.Second)
	return Bucket{
		Region:          DefaultRegion,
		Scheme:          DefaultScheme,
		AddressingStyle: DefaultAddressingStyle,
		UploadFraming:   DefaultUploadFraming,
		TTLSeconds:      &ttl,
	}
}

// DefaultsJSON is what osp_config_defaults returns: {"config": every
// top-level key with its default, "bucket": every cos_map entry key with
// its default}. Keys without a default (ports, callables, credentials) are
// there too, as null or empty, so the document also lists every key.
func DefaultsJSON() ([]byte, error) {
	return json.Marshal(struct {
		Config Config `json:"config"`
		Bucket Bucket `json:"bucket"`
	}{Defaults(), DefaultBucket()})
}

// MarshalJSON writes the forms UnmarshalJSON reads: true (system roots),
// false (no verification) or the CA bundle path.
func (v Verify) MarshalJSON() ([]byte, error) {
	if v.CABundle != "" {
		return json.Marshal(v.CABundle)
	}
	return json.Marshal(!v.Skip)
}
