package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/object-storage-proxy/osp/internal/config"
)

// TLSConfig is how backends' certificates are checked: the system roots,
// a CA bundle, or (the operator's explicit choice) not at all.
func TLSConfig(verify config.Verify) (*tls.Config, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: verify.Skip} //nolint:gosec // operator's explicit choice
	if verify.CABundle != "" {
		pem, err := os.ReadFile(verify.CABundle)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", verify.CABundle)
		}
		tlsConfig.RootCAs = pool
	}
	return tlsConfig, nil
}

// NewHTTPTransport is a net/http transport with the same certificate
// checks, for the few requests that are not S3 traffic (IBM Cloud IAM). It
// never decompresses and never uses an environment proxy.
func NewHTTPTransport(verify config.Verify, timeout time.Duration) (*http.Transport, error) {
	tlsConfig, err := TLSConfig(verify)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   handshakeTimeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: timeout,
	}, nil
}

// redirect applies connect_to to a dialled "host:port": an exact entry,
// or one whose host is a parent domain (virtual-hosted bucket names).
func redirect(addr string, connectTo map[string]string) string {
	if to, ok := connectTo[addr]; ok {
		return to
	}
	for from, to := range connectTo {
		if strings.HasSuffix(addr, "."+from) {
			return to
		}
	}
	return addr
}
