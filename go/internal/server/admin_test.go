package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/object-storage-proxy/osp/internal/config"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAdminListenerIsApart(t *testing.T) {
	cfg, err := config.Parse([]byte(`{"http_port": 0, "bind": "127.0.0.1", "admin_port": 0,
		"cos_map": {"data": {"host": "127.0.0.1", "port": 9, "scheme": "http", "access_key": "a", "secret_key": "s"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	inFlight := func(kind string) int64 { return int64(len(kind)) }
	srv, err := Start(cfg, Hooks{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CallsInFlight: inFlight})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()
	httpPort, _ := srv.Ports()
	admin := "http://127.0.0.1:" + strconv.Itoa(srv.AdminPort())
	s3 := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	if srv.AdminPort() == 0 || srv.AdminPort() == httpPort {
		t.Fatalf("admin port %d, http port %d", srv.AdminPort(), httpPort)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready",
		"/metrics": `osp_callable_calls_in_flight{callable="hmac_fetcher"} 12`} {
		if status, body := get(t, admin+path); status != 200 || !strings.Contains(body, want) {
			t.Errorf("admin %s: %d %.200q", path, status, body)
		}
	}
	for _, path := range []string{"/_osp/metrics", "/metrics", "/healthz", "/_osp/readyz"} {
		status, body := get(t, s3+path)
		if status == 200 || !strings.Contains(body, "<Code>") || strings.Contains(body, "go_goroutines") {
			t.Errorf("S3 listener %s: %d %.200q", path, status, body)
		}
	}
	if status, _ := get(t, admin+"/data/k"); status != 404 {
		t.Errorf("the admin listener served an S3 path: %d", status)
	}
	srv.stopping.Store(true) // as Shutdown does first
	if status, _ := get(t, admin+"/readyz"); status != 503 {
		t.Errorf("readyz while stopping: %d", status)
	}
}
