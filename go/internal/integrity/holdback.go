// Package integrity guards request bodies on their way to a backend that
// cannot check them itself (a bearer-token backend checks no payload hash):
// it verifies them as they stream and keeps the backend from ever seeing a
// complete body that failed.
package integrity

import (
	"errors"
	"io"
)

// HoldBack passes r through but keeps its last byte until r reports
// io.EOF, which a verifying reader does only once the body proved good. A
// backend that knows the body's length therefore never receives all of a
// body that failed: the held byte is dropped and the request is cut short.
type HoldBack struct {
	r    io.Reader
	held byte
	has  bool
	one  [1]byte
	err  error // r's error, once seen (io.EOF: verified to the end)
}

// NewHoldBack wraps r.
func NewHoldBack(r io.Reader) *HoldBack { return &HoldBack{r: r} }

func (h *HoldBack) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if h.err != nil {
			if errors.Is(h.err, io.EOF) && h.has {
				p[0], h.has = h.held, false
				return 1, nil
			}
			return 0, h.err
		}
		// New bytes go after the held byte, or into a one-byte buffer when
		// the held byte fills p.
		off := 0
		if h.has {
			off = 1
		}
		buf := h.one[:]
		if off < len(p) {
			buf = p[off:]
		}
		m, err := h.r.Read(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			h.err = err
			return 0, err // failed: the held byte never goes
		}
		h.err = err
		if m == 0 {
			continue
		}
		// The held byte may go now; the newest byte is held instead.
		if off == len(p) {
			p[0], h.held = h.held, h.one[0]
			return 1, nil
		}
		if h.has {
			p[0] = h.held
		}
		n := off + m
		h.held, h.has = p[n-1], true
		if n > 1 {
			return n - 1, nil
		}
	}
}
