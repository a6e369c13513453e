package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/proxy"
)

// Admin paths, served only on the admin listener. The S3 listeners share
// no path with it: there, /healthz or /_osp/metrics is an S3 request for a
// bucket or, virtual-hosted, for a key.
const (
	healthzPath = "/healthz"
	readyzPath  = "/readyz"
	metricsPath = "/metrics"
)

// adminTimeout bounds reading a probe's request and writing its answer:
// the admin listener serves small GETs only.
const adminTimeout = 10 * time.Second

// startAdmin binds the admin listener of cfg, if any, and serves it in the
// background. It stays up while the S3 listeners drain, so that readyz can
// say 503 then; Shutdown closes it last.
func (s *Server) startAdmin(cfg *config.Config) error {
	if cfg.AdminPort == nil {
		return nil
	}
	ln, err := listen(cfg.AdminBind, *cfg.AdminPort)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	s.adminPort = ln.Addr().(*net.TCPAddr).Port
	s.adminServer = &http.Server{
		Handler:           http.HandlerFunc(s.admin),
		ReadHeaderTimeout: adminTimeout,
		ReadTimeout:       adminTimeout,
		WriteTimeout:      adminTimeout,
		IdleTimeout:       adminTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := s.adminServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener failed", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return nil
}

// shutdownAdmin closes the admin listener (after the S3 listeners).
func (s *Server) shutdownAdmin(ctx context.Context) error {
	if s.adminServer == nil {
		return nil
	}
	if err := s.adminServer.Shutdown(ctx); err != nil {
		return errors.Join(err, s.adminServer.Close())
	}
	return nil
}

// admin answers healthz, readyz and metrics; only GET (and HEAD).
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amz-request-id", proxy.NewRequestID())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case healthzPath:
		_, _ = w.Write([]byte("ok\n"))
	case readyzPath:
		if s.stopping.Load() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n" + s.state.readiness()))
	case metricsPath:
		s.mu.Lock()
		enabled := s.cfg.MetricsEnabled()
		s.mu.Unlock()
		if !enabled {
			http.NotFound(w, r)
			return
		}
		s.metrics.Handler().ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// AdminPort returns the bound admin port, 0 when there is no admin listener.
func (s *Server) AdminPort() int { return s.adminPort }
