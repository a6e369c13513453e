// Package server runs the proxy's listeners for one configuration, serves
// the admin endpoints on a listener of their own, and swaps configurations
// on reload.
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
	"sync/atomic"
	"time"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/h1"
	"github.com/object-storage-proxy/osp/internal/iam"
	"github.com/object-storage-proxy/osp/internal/metrics"
	"github.com/object-storage-proxy/osp/internal/proxy"
	"github.com/object-storage-proxy/osp/internal/upstream"
)

// Server is a running proxy: its listeners, their HTTP servers and the
// handler of the current configuration.
type Server struct {
	servers   []listenerServer
	httpPort  int
	httpsPort int
	// adminServer serves healthz, readyz and metrics on adminPort; nil
	// without admin_port.
	adminServer *http.Server
	adminPort   int
	log         *slog.Logger
	metrics     *metrics.Metrics
	state       *stateStore // the limits' counts, kept across reloads

	mu      sync.Mutex // guards cfg, tokens and handler swaps (reload)
	cfg     *config.Config
	tokens  map[string]*iam.Tokens // by IAM URL, kept across reloads
	handler atomic.Pointer[proxy.Handler]
	// transport is the handler's backend client, retired when a reload
	// replaces it so its idle connections close.
	transport *upstream.Transport

	inFlight sync.WaitGroup // handlers running, so Shutdown can promise none is
	stopping atomic.Bool
}

// Start binds the configured listeners and serves in the background.
func Start(cfg *config.Config, hooks Hooks) (*Server, error) {
	log := hooks.Logger
	if log == nil {
		log = slog.Default()
	}
	// Parse checks this too; a Config built another way must not slip by.
	if err := cfg.CheckUnverifiedBind(); err != nil {
		return nil, err
	}
	s := &Server{log: log, metrics: metrics.New(), tokens: map[string]*iam.Tokens{}}
	s.state = newStateStore(log, s.metrics)
	if hooks.CallsInFlight != nil {
		s.metrics.CallsInFlight(hooks.CallsInFlight, "validator", "bucket_creds_fetcher", "hmac_fetcher", "rate_limit_fetcher")
	}
	if err := s.install(cfg, hooks); err != nil {
		s.state.close()
		return nil, err
	}
	if cfg.Verify.Skip {
		log.Warn("backend TLS certificates are not verified (verify=False)")
	}
	warnUnverified(log, cfg)
	root := s.rootHandler()
	timeouts := cfg.Timeouts()
	if cfg.HTTPSPort != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertPath, cfg.TLSKeyPath)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", cfg.TLSCertPath, cfg.TLSKeyPath, err)
		}
		ln, err := listen(cfg.Bind, *cfg.HTTPSPort)
		if err != nil {
			_ = s.Shutdown(context.Background())
			return nil, err
		}
		srv := newTLSServer(root, timeouts, log)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.httpsPort = ln.Addr().(*net.TCPAddr).Port
		// ServeTLS enables HTTP/2 (ALPN "h2") beside HTTP/1.1.
		s.serve(srv, ln, func() error { return srv.ServeTLS(ln, "", "") })
	}
	if cfg.HTTPPort != nil {
		ln, err := listen(cfg.Bind, *cfg.HTTPPort)
		if err != nil {
			_ = s.Shutdown(context.Background())
			return nil, err
		}
		s.httpPort = ln.Addr().(*net.TCPAddr).Port
		srv := &h1.Server{Handler: root, ReadHeaderTimeout: timeouts.ClientHeader, IdleTimeout: timeouts.ClientIdle,
			MaxHeaderBytes: maxHeaderBytes, Log: log}
		s.serve(srv, ln, func() error { return srv.Serve(ln) })
	}
	if err := s.startAdmin(cfg); err != nil {
		_ = s.Shutdown(context.Background())
		return nil, err
	}
	log.Info("object-storage-proxy listening", "bind", cfg.Bind, "http_port", s.httpPort, "https_port", s.httpsPort,
		"admin_bind", cfg.AdminBind, "admin_port", s.adminPort, "buckets", len(cfg.CosMap))
	return s, nil
}

// warnUnverified says loudly, at start and at every reload, that client
// signatures are not checked, and louder still on a network address.
func warnUnverified(log *slog.Logger, cfg *config.Config) {
	if !cfg.SkipSignatureValidation {
		return
	}
	log.Warn("client signatures are NOT verified (skip_signature_validation=True): anyone who knows an access key id gets in", "bind", cfg.Bind)
	if !config.IsLoopback(cfg.Bind) {
		log.Warn("client signatures are NOT verified on a network address (allow_unverified_on_network=True): anyone who can reach this address and knows an access key id gets in", "bind", cfg.Bind)
	}
}

// Reload swaps in a new configuration: requests already running finish
// with the old one, new requests get the new one. Listeners cannot move.
func (s *Server) Reload(cfg *config.Config, hooks Hooks) error {
	s.mu.Lock()
	same := s.cfg.SameListeners(cfg)
	s.mu.Unlock()
	if !same {
		return errors.New("reload cannot change ports (admin_port too), bind addresses, TLS files or client timeouts; restart instead")
	}
	if err := cfg.CheckUnverifiedBind(); err != nil {
		return err
	}
	if err := s.install(cfg, hooks); err != nil {
		return err
	}
	warnUnverified(s.log, cfg)
	s.log.Info("configuration reloaded", "buckets", len(cfg.CosMap))
	return nil
}

// install builds the handler of cfg and its callables and makes it current.
func (s *Server) install(cfg *config.Config, hooks Hooks) error {
	tlsConfig, err := upstream.TLSConfig(cfg.Verify)
	if err != nil {
		return fmt.Errorf("backend transport: %w", err)
	}
	transport := upstream.New(upstream.Options{TLS: tlsConfig, ConnectTo: cfg.ConnectTo, ResponseHeaderTimeout: cfg.Timeouts().Backend})
	s.mu.Lock()
	defer s.mu.Unlock()
	tokens, err := s.tokensFor(cfg)
	if err != nil {
		return err
	}
	limiter, err := s.state.limiterFor(cfg)
	if err != nil {
		return err
	}
	s.handler.Store(newHandler(cfg, hooks, transport, tokens, limiter, s.metrics, s.log))
	s.cfg = cfg
	if s.transport != nil {
		s.transport.Close() // requests still running on it finish normally
	}
	s.transport = transport
	return nil
}

// tokensFor keeps one token cache per IAM endpoint, so a reload keeps the
// tokens it already has. The caller holds s.mu.
func (s *Server) tokensFor(cfg *config.Config) (*iam.Tokens, error) {
	key := cfg.IAMURL + "\x00" + fmt.Sprint(cfg.Verify)
	if t, ok := s.tokens[key]; ok {
		return t, nil
	}
	iamTransport, err := upstream.NewHTTPTransport(cfg.Verify, cfg.Timeouts().Backend)
	if err != nil {
		return nil, fmt.Errorf("IAM transport: %w", err)
	}
	t := iam.NewTokens(iam.NewClient(cfg.IAMURL, iamTransport), cfg.CacheSize, s.log)
	t.Observe(func(hit bool) { s.metrics.CacheLookup("iam_tokens", hit) }, s.metrics.IAMFetch)
	s.tokens[key] = t
	return t, nil
}

// rootHandler sends every request of an S3 listener to the current proxy
// handler: the S3 listeners answer only S3 (the admin endpoints have their
// own listener), so no path or virtual-hosted key is shadowed.
func (s *Server) rootHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Done()
		s.handler.Load().ServeHTTP(w, r)
	})
}

func listen(bind string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// maxHeaderBytes bounds a request's headers: S3 allows 8 KiB of headers
// and 2 KiB of user metadata; this leaves room for long presigned URLs.
const maxHeaderBytes = 64 << 10

// newTLSServer is net/http's server, for TLS listeners: HTTP/2 needs it.
// Plain listeners have h1's leaner one.
func newTLSServer(h http.Handler, t config.Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ClientHeader,
		IdleTimeout:       t.ClientIdle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// listenerServer is the server of one listener: net/http's for TLS, h1's
// for plain TCP.
type listenerServer interface {
	Shutdown(ctx context.Context) error
	Close() error
}

func (s *Server) serve(srv listenerServer, ln net.Listener, serve func() error) {
	s.servers = append(s.servers, srv)
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener failed", "addr", ln.Addr().String(), "error", err)
		}
	}()
}

// Ports returns the bound ports, 0 for a listener not configured.
func (s *Server) Ports() (httpPort, httpsPort int) { return s.httpPort, s.httpsPort }

// abandonAfter bounds the wait for handlers after their connections were
// closed; they end quickly then, unless stuck in a host callable.
const abandonAfter = 5 * time.Second

// Shutdown closes the S3 listeners at once and waits for in-flight
// requests until ctx ends, then closes their connections and waits for the
// handlers to return, so that no host callable runs after Shutdown returns.
// The admin listener stays up meanwhile (readyz answers 503) and closes
// last.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	defer func() {
		// Bounded separately: ctx may be over, and probes are short.
		adminCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.shutdownAdmin(adminCtx); err != nil {
			s.log.Warn("admin listener did not close cleanly", "error", err)
		}
	}()
	done := make(chan struct{})
	go func() {
		s.inFlight.Wait()
		s.mu.Lock()
		for _, t := range s.tokens {
			t.Close()
		}
		if s.transport != nil {
			s.transport.Close()
		}
		s.mu.Unlock()
		s.state.close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(abandonAfter):
		errs = append(errs, errors.New("request handlers still running after their connections were closed"))
	}
	return errors.Join(errs...)
}
