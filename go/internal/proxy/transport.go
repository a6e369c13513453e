package proxy

import (
	"context"
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

// NewTransport returns the pooled client transport to backends. It never
// decompresses (bodies and ETags must pass untouched) and never uses an
// environment proxy. connectTo maps a backend "host:port" (and its
// virtual-hosted "bucket.host:port" names) to the address actually dialled.
// backendTimeout bounds the wait for a backend's response headers (S3
// answers slow operations with early headers and whitespace, so this can
// be generous); 0 means no bound.
func NewTransport(verify config.Verify, connectTo map[string]string, backendTimeout time.Duration) (*http.Transport, error) {
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
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if len(connectTo) > 0 {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, redirect(addr, connectTo))
		}
	}
	return &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: backendTimeout,
	}, nil
}

// redirect applies connectTo to a dialled address.
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
