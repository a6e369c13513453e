// Package server runs the proxy's listeners for one configuration.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/object-storage-proxy/osp/internal/authz"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/creds"
	"github.com/object-storage-proxy/osp/internal/iam"
	"github.com/object-storage-proxy/osp/internal/proxy"
)

// Hooks are the host's callables and observers; any may be nil.
type Hooks struct {
	Validator     authz.Validator
	BucketFetcher creds.BucketFetcher
	SecretFetcher creds.SecretFetcher
	OnRequest     func()
	Logger        *slog.Logger
}

// Server is a running proxy: its listeners and their HTTP servers.
type Server struct {
	servers   []*http.Server
	inFlight  sync.WaitGroup // handlers running, so Shutdown can promise none is
	tokens    *iam.Tokens
	httpPort  int
	httpsPort int
	log       *slog.Logger
}

// Start binds the configured listeners and serves in the background.
func Start(cfg *config.Config, hooks Hooks) (*Server, error) {
	log := hooks.Logger
	if log == nil {
		log = slog.Default()
	}
	transport, err := proxy.NewTransport(cfg.Verify, cfg.ConnectTo)
	if err != nil {
		return nil, fmt.Errorf("backend transport: %w", err)
	}
	iamTransport, err := proxy.NewTransport(cfg.Verify, nil)
	if err != nil {
		return nil, fmt.Errorf("IAM transport: %w", err)
	}
	tokens := iam.NewTokens(iam.NewClient(cfg.IAMURL, iamTransport), cfg.CacheSize, log)
	if cfg.Verify.Skip {
		log.Warn("backend TLS certificates are not verified (verify=False)")
	}
	if cfg.SkipSignatureValidation {
		log.Warn("client signatures are NOT verified (skip_signature_validation=True): anyone who knows an access key id gets in")
	}
	handler := proxy.New(proxy.Options{
		Buckets:                 cfg.CosMap,
		ClientSecrets:           creds.NewClientSecrets(cfg.HMACKeystore, hooks.SecretFetcher, cfg.CacheSize),
		BackendCreds:            creds.NewBackendCreds(hooks.BucketFetcher, cfg.BucketCredsFetcherIdentity, cfg.CacheSize),
		Authorizer:              authz.New(hooks.Validator, cfg.ValidatorIdentity, cfg.CacheSize),
		Tokens:                  tokens,
		SkipSignatureValidation: cfg.SkipSignatureValidation,
		VirtualHostDomains:      cfg.VirtualHostDomains,
		Transport:               transport,
		Logger:                  log,
		OnRequest:               hooks.OnRequest,
	})

	s := &Server{log: log, tokens: tokens}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Done()
		handler.ServeHTTP(w, r)
	})
	if cfg.HTTPSPort != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertPath, cfg.TLSKeyPath)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", cfg.TLSCertPath, cfg.TLSKeyPath, err)
		}
		ln, err := listen(cfg.Bind, *cfg.HTTPSPort)
		if err != nil {
			return nil, err
		}
		tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.httpsPort = ln.Addr().(*net.TCPAddr).Port
		s.serve(newHTTPServer(counted, log), tls.NewListener(ln, tlsConfig))
	}
	if cfg.HTTPPort != nil {
		ln, err := listen(cfg.Bind, *cfg.HTTPPort)
		if err != nil {
			_ = s.Shutdown(context.Background())
			return nil, err
		}
		s.httpPort = ln.Addr().(*net.TCPAddr).Port
		s.serve(newHTTPServer(counted, log), ln)
	}
	log.Info("object-storage-proxy listening", "bind", cfg.Bind, "http_port", s.httpPort, "https_port", s.httpsPort, "buckets", len(cfg.CosMap))
	return s, nil
}

func listen(bind string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener failed", "addr", ln.Addr().String(), "error", err)
		}
	}()
}

// Ports returns the bound ports, 0 for a listener not configured.
func (s *Server) Ports() (httpPort, httpsPort int) { return s.httpPort, s.httpsPort }

// abandonAfter bounds the wait for handlers after their connections were
// closed; they end quickly then, unless stuck in a host callable.
const abandonAfter = 5 * time.Second

// Shutdown closes the listeners at once and waits for in-flight requests
// until ctx ends, then closes their connections and waits for the handlers
// to return, so that no host callable runs after Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	done := make(chan struct{})
	go func() { s.inFlight.Wait(); s.tokens.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(abandonAfter):
		errs = append(errs, errors.New("request handlers still running after their connections were closed"))
	}
	return errors.Join(errs...)
}
