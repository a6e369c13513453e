package limits

import (
	"context"
	"io"
	"time"
)

// maxBatch is the most bytes taken from a bandwidth budget at once: on Redis one round trip per
// 64 KiB rather than per Read, while the stream runs ahead of its budget by one batch at most.
const maxBatch = 64 << 10

// throttledReader charges what it reads to a bandwidth budget. It reads first and pays after,
// in batches: a Read returns at once while the unpaid bytes are under a batch, and the Read that
// completes a batch (or meets the end) waits for its tokens before handing its bytes on. So
// every byte is charged exactly once and nothing is buffered beyond the caller's own slice. A
// body that ends before its first batch is paid through Limiter.payShort: at once in process,
// owed on a shared store until the key's debt makes a batch.
type throttledReader struct {
	ctx            context.Context
	r              io.Reader
	l              *Limiter
	key            string
	bytesPerSecond int64
	batch          int // also the burst: a batch must fit in the bucket
	unpaid         int
	paidBatch      bool // a full batch was paid: the body is not short
}

func newThrottledReader(ctx context.Context, r io.Reader, l *Limiter, key string, bytesPerSecond int64) *throttledReader {
	// A batch no bigger than a second's worth keeps a slow limit smooth.
	batch := int(min(bytesPerSecond, maxBatch))
	return &throttledReader{ctx: ctx, r: r, l: l, key: key, bytesPerSecond: bytesPerSecond, batch: batch}
}

func (t *throttledReader) Read(p []byte) (int, error) {
	if len(p) > t.batch-t.unpaid {
		p = p[:t.batch-t.unpaid]
	}
	n, err := t.r.Read(p)
	t.unpaid += n
	var payErr error
	switch {
	case t.unpaid == t.batch:
		payErr = t.l.waitBytes(t.ctx, t.key, t.bytesPerSecond, t.batch, t.unpaid)
		t.paidBatch = true
	case err != nil && t.unpaid > 0 && !t.paidBatch:
		payErr = t.l.payShort(t.ctx, t.key, t.bytesPerSecond, t.batch, t.unpaid)
	case err != nil && t.unpaid > 0:
		payErr = t.l.waitBytes(t.ctx, t.key, t.bytesPerSecond, t.batch, t.unpaid)
	}
	if payErr != nil {
		return 0, payErr
	}
	if t.unpaid == t.batch || err != nil {
		t.unpaid = 0
	}
	return n, err
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
