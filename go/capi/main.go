// Command capi is libosp.so, the C API of object-storage-proxy declared in
// include/osp.h. It is the only package that knows C, and the only place
// with process-wide state: the host's trampoline, the running servers by
// handle, and the request counter the original Python API exposes.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include <stdlib.h>
#include "osp.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/object-storage-proxy/osp/internal/accesslog"
	"github.com/object-storage-proxy/osp/internal/config"
	"github.com/object-storage-proxy/osp/internal/linebatch"
	"github.com/object-storage-proxy/osp/internal/nowait"
	"github.com/object-storage-proxy/osp/internal/server"
)

// cVersion is OSP_VERSION of include/osp.h, the one place the version is
// written; static for the life of the process.
var cVersion = C.CString(C.OSP_VERSION)

var (
	callback atomic.Pointer[C.osp_callback_fn]

	serversMu  sync.Mutex
	servers    = map[int64]*running{}
	nextHandle int64

	countingEnabled atomic.Bool
	requestCount    atomic.Int64
)

func main() {} // required by -buildmode=c-shared

// running is one started server and the bound of its callable calls, which
// outlives reloads (calls of the old configuration still hold slots).
type running struct {
	srv     *server.Server
	limiter *callLimiter
}

// lookup returns the running server of handle.
func lookup(handle C.int64_t) (*running, bool) {
	serversMu.Lock()
	defer serversMu.Unlock()
	r, ok := servers[int64(handle)]
	return r, ok
}

//export osp_register_callback
func osp_register_callback(fn C.osp_callback_fn) {
	if fn == nil {
		callback.Store(nil)
		return
	}
	callback.Store(&fn)
}

//export osp_server_start
func osp_server_start(configJSON *C.char, errOut **C.char) C.int64_t {
	setErr := func(err error) C.int64_t {
		if errOut != nil {
			*errOut = C.CString(err.Error())
		}
		return 0
	}
	cfg, err := config.Parse([]byte(C.GoString(configJSON)))
	if err != nil {
		return setErr(err)
	}
	if cfg.Threads > 1 {
		// threads bounds the cores the proxy uses; 1, the original's
		// default, leaves Go's default of every core.
		runtime.GOMAXPROCS(cfg.Threads)
	}
	limiter := newCallLimiter(cfg.MaxCallableCalls)
	srv, err := server.Start(cfg, hooksOf(cfg, limiter))
	if err != nil {
		return setErr(err)
	}
	serversMu.Lock()
	defer serversMu.Unlock()
	nextHandle++
	servers[nextHandle] = &running{srv: srv, limiter: limiter}
	return C.int64_t(nextHandle)
}

//export osp_server_reload
func osp_server_reload(handle C.int64_t, configJSON *C.char) *C.char {
	r, ok := lookup(handle)
	if !ok {
		return C.CString("unknown server handle")
	}
	cfg, err := config.Parse([]byte(C.GoString(configJSON)))
	if err == nil {
		err = r.srv.Reload(cfg, hooksOf(cfg, r.limiter))
	}
	if err != nil {
		return C.CString(err.Error())
	}
	r.limiter.setLimit(cfg.MaxCallableCalls)
	return nil
}

// hooksOf connects a configuration's callables, bounded by the server's
// limiter, and the process-wide request counter.
func hooksOf(cfg *config.Config, limiter *callLimiter) server.Hooks {
	timeout := cfg.CallbackTimeout()
	return server.Hooks{
		Validator:        validatorHook(limiter, cfg.Validator, timeout),
		BucketFetcher:    bucketFetcherHook(limiter, cfg.BucketCredsFetcher, timeout),
		SecretFetcher:    secretFetcherHook(limiter, cfg.HMACFetcher, timeout),
		RateLimitFetcher: rateLimitFetcherHook(limiter, cfg.RateLimitFetcher, timeout),
		CallsInFlight:    limiter.inFlight,
		OnRequest:        countRequest,
		Logger:           newLogger(cfg.LogFormat, cfg.LogLevel, stderrLines.Immediate()),
		AccessLogger:     accesslog.New(cfg.LogFormat, stderrLines, stderrLines.Immediate()),
	}
}

//export osp_server_ports
func osp_server_ports(handle C.int64_t) *C.char {
	r, ok := lookup(handle)
	if !ok {
		return nil
	}
	httpPort, httpsPort := r.srv.Ports()
	adminPort := r.srv.AdminPort()
	ports := map[string]*int{"http_port": nil, "https_port": nil, "admin_port": nil}
	for name, port := range map[string]*int{"http_port": &httpPort, "https_port": &httpsPort, "admin_port": &adminPort} {
		if *port != 0 {
			ports[name] = port
		}
	}
	out, _ := json.Marshal(ports) // a map of ints always marshals
	return C.CString(string(out))
}

//export osp_server_stop
func osp_server_stop(handle C.int64_t, timeoutMS C.int64_t) *C.char {
	serversMu.Lock()
	r, ok := servers[int64(handle)]
	delete(servers, int64(handle))
	serversMu.Unlock()
	if !ok {
		return C.CString("unknown server handle")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMS)*time.Millisecond)
	defer cancel()
	defer stderrLines.Flush() // the stopped server's last lines
	if err := r.srv.Shutdown(ctx); err != nil {
		return C.CString("stop: " + err.Error())
	}
	return nil
}

//export osp_set_request_counting
func osp_set_request_counting(enabled C.int32_t) { countingEnabled.Store(enabled != 0) }

//export osp_get_request_count
func osp_get_request_count() C.int64_t { return C.int64_t(requestCount.Load()) }

//export osp_reset_request_count
func osp_reset_request_count() { requestCount.Store(0) }

//export osp_free
func osp_free(s *C.char) { C.free(unsafe.Pointer(s)) }

//export osp_config_defaults
func osp_config_defaults() *C.char {
	out, err := config.DefaultsJSON()
	if err != nil {
		return nil // a struct of plain values always marshals
	}
	return C.CString(string(out))
}

//export osp_version
func osp_version() *C.char { return cVersion }

func countRequest() {
	if countingEnabled.Load() {
		requestCount.Add(1)
	}
}

// stderrLines is where every server's logs go: stderr. Access lines
// written close together go in batches (package linebatch), held at most
// logWindow; every other line goes at once, after them. One for the
// process, as stderr is.
var stderrLines = linebatch.New(nowait.Stderr(), logWindow)

// logWindow is the longest an access line waits to go out with others.
const logWindow = 20 * time.Millisecond

// newLogger writes logs to out in format ("text" or "json") from level
// on (both checked by config.Parse).
func newLogger(format, levelName string, out io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}
