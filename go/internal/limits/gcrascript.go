package limits

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// redis_rate keeps its GCRA script to itself, but taking a request and counting a presigned use
// in one round trip needs that GCRA and the count in one script: only inside one script can the
// count depend on the rate's answer (a throttled attempt spends no use). Rather than keep a
// second GCRA, the store borrows redis_rate's own: go-redis' Script.Run sends EVALSHA and, when
// Redis answers NOSCRIPT, EVAL with the script's text, so a Scripter that answers NOSCRIPT hears
// the text, the key and the arguments redis_rate sends. A test (TestAllowUseSharesTheRate)
// checks that the borrowed GCRA and redis_rate's Allow take from one budget.

// gcraScript is redis_rate's AllowN script as caught: its text and the prefix it puts before a
// key (so that both scripts read and write one key per budget).
type gcraScript struct {
	src       string
	keyPrefix string
}

// errCaught ends redis_rate's call once its script is caught: nothing reaches Redis.
var errCaught = errors.New("limits: redis_rate's script caught")

// catchGCRA catches redis_rate's AllowN script, and checks that it still takes its arguments
// as gcraScript.args sends them: were that to change in a later redis_rate, Open fails rather
// than running the GCRA on misread arguments.
func catchGCRA() (gcraScript, error) {
	const probe = "probe"
	limit, n := redis_rate.Limit{Rate: 2, Burst: 3, Period: 5 * time.Second}, 7
	var c scriptCatcher
	_, err := redis_rate.NewLimiter(&c).AllowN(context.Background(), probe, limit, n)
	g := gcraScript{src: c.src}
	if len(c.keys) == 1 {
		g.keyPrefix = strings.TrimSuffix(c.keys[0], probe)
	}
	if !errors.Is(err, errCaught) || len(c.keys) != 1 || !strings.HasSuffix(c.keys[0], probe) ||
		fmt.Sprint(c.args) != fmt.Sprint(g.args(limit, n)) {
		return gcraScript{}, fmt.Errorf("limits: redis_rate's GCRA script could not be borrowed (keys %q, arguments %v: %v)", c.keys, c.args, err)
	}
	return g, nil
}

// args are the arguments redis_rate's AllowN sends for n events under limit: ARGV[1] to ARGV[4].
func (gcraScript) args(limit redis_rate.Limit, n int) []any {
	return []any{limit.Burst, limit.Rate, limit.Period.Seconds(), n}
}

// scriptCatcher is a redis_rate "rediser" that runs nothing: it answers EVALSHA with NOSCRIPT
// and keeps what EVAL brings.
type scriptCatcher struct {
	src  string
	keys []string
	args []any
}

func (c *scriptCatcher) failed(ctx context.Context, err error) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}

func (c *scriptCatcher) EvalSha(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return c.failed(ctx, redis.ErrNoScript)
}

func (c *scriptCatcher) Eval(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	c.src, c.keys, c.args = src, keys, args
	return c.failed(ctx, errCaught)
}

func (c *scriptCatcher) EvalShaRO(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	return c.EvalSha(ctx, sha, keys, args...)
}

func (c *scriptCatcher) EvalRO(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	return c.Eval(ctx, src, keys, args...)
}

func (c *scriptCatcher) ScriptExists(ctx context.Context, _ ...string) *redis.BoolSliceCmd {
	cmd := redis.NewBoolSliceCmd(ctx)
	cmd.SetErr(errCaught)
	return cmd
}

func (c *scriptCatcher) ScriptLoad(ctx context.Context, _ string) *redis.StringCmd {
	cmd := redis.NewStringCmd(ctx)
	cmd.SetErr(errCaught)
	return cmd
}

func (c *scriptCatcher) Del(ctx context.Context, _ ...string) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx)
	cmd.SetErr(errCaught)
	return cmd
}
