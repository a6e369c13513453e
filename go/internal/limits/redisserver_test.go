package limits

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisBinary = "/usr/bin/redis-server"

// redisServer is a real redis-server for one test, on 127.0.0.1 at a free port, in a temp dir.
// It can be stopped and started again on the same port and dir, as a restart would.
type redisServer struct {
	tb   testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// startRedis starts redis-server with no persistence unless extra arguments say otherwise.
// Without the binary the test is skipped, unless CI is set: there a missing Redis fails.
func startRedis(tb testing.TB, extra ...string) *redisServer {
	tb.Helper()
	if _, err := os.Stat(redisBinary); err != nil {
		if os.Getenv("CI") == "" {
			tb.Skipf("%s not installed", redisBinary)
		}
		tb.Fatalf("%s not installed (and CI is set): %v", redisBinary, err)
	}
	s := &redisServer{tb: tb, port: freePort(tb), dir: tb.TempDir()}
	s.args = append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--logfile", "redis.log"}, extra...)
	s.start()
	tb.Cleanup(s.stop)
	return s
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }
func (s *redisServer) url() string  { return "redis://" + s.addr() + "/0" }

func (s *redisServer) start() {
	s.tb.Helper()
	s.cmd = exec.Command(redisBinary, s.args...)
	s.cmd.Dir = s.dir
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), Password: s.password(), MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
	}
	s.tb.Fatalf("redis-server on %s did not answer", s.addr())
}

// password is the --requirepass argument, if any.
func (s *redisServer) password() string {
	for i, a := range s.args {
		if a == "--requirepass" && i+1 < len(s.args) {
			return s.args[i+1]
		}
	}
	return ""
}

// stop ends redis-server as a service manager would (SIGTERM), waiting for it to exit.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

func (s *redisServer) restart() {
	s.stop()
	s.start()
}

// client is a plain client for looking at the keys the store wrote.
func (s *redisServer) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), Password: s.password()})
	s.tb.Cleanup(func() { c.Close() })
	return c
}

func openLimiter(tb testing.TB, stateURL string, opts Options) *Limiter {
	tb.Helper()
	l, err := Open(stateURL, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// fleet is the limiters one test runs against: one for the memory store, two separate ones on
// the same Redis (as two proxies would be).
func fleets(t *testing.T, opts Options) map[string][]*Limiter {
	srv := startRedis(t)
	return map[string][]*Limiter{
		"memory": {openLimiter(t, "", opts)},
		"redis":  {openLimiter(t, srv.url(), opts), openLimiter(t, srv.url(), opts)},
	}
}
