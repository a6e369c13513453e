package limits

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

const secret = "s3cr3t-Pw"

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	if strings.Contains(text, secret) {
		t.Errorf("%s shows the password: %s", what, text)
	}
}

// The Redis password appears in no error, String or Health, whether it came in the URL or from
// the environment, and even when the URL is malformed.
func TestPasswordNeverShown(t *testing.T) {
	for _, bad := range []string{
		"redis://:" + secret + "@127.0.0.1:notaport/0",
		"redis://:" + secret + "@[::1/0",
		"redis://u:" + secret + "@127.0.0.1:6379/notadb",
		"redis://:" + secret + "@127.0.0.1:6379/0?bogus=1",
		"http://:" + secret + "@127.0.0.1:6379/0",
		"redis://:" + secret + "%zz@127.0.0.1:6379/0",
	} {
		_, err := Open(bad, Options{})
		if err == nil {
			t.Errorf("Open accepted a malformed URL")
			continue
		}
		assertNoSecret(t, "Open's error", err.Error())
	}

	// Nothing listens on port 1: every operation fails, and its error is shown.
	l := openLimiter(t, "redis://user:"+secret+"@127.0.0.1:1/0", Options{Timeout: 50 * time.Millisecond})
	assertNoSecret(t, "String", l.String())
	assertNoSecret(t, "%+v of the Limiter", fmt.Sprintf("%+v", l))
	ctx := context.Background()
	d, _ := l.UsePresigned(ctx, signature(), 1, time.Now().Add(time.Hour))
	if d.Err == nil {
		t.Fatal("no error from a store that is not there")
	}
	assertNoSecret(t, "a decision's error", d.Err.Error())
	h := l.Health(ctx)
	assertNoSecret(t, "Health", fmt.Sprintf("%+v", h))
}

// The password comes from OSP_STATE_PASSWORD when the URL has none; a wrong one is refused
// without being shown.
func TestPasswordFromEnvironment(t *testing.T) {
	srv := startRedis(t, "--requirepass", secret)
	t.Setenv("OSP_STATE_PASSWORD", secret)
	if h := openLimiter(t, srv.url(), Options{}).Health(context.Background()); !h.Reachable {
		t.Errorf("with the password from the environment: %+v", h)
	}
	t.Setenv("OSP_STATE_PASSWORD", secret+"-wrong")
	h := openLimiter(t, srv.url(), Options{}).Health(context.Background())
	if h.Reachable {
		t.Fatal("a wrong password was accepted")
	}
	assertNoSecret(t, "Health with a wrong password", fmt.Sprintf("%+v", h))
}
