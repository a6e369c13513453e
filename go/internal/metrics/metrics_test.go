package metrics

import (
	"strconv"
	"testing"
	"time"
)

func TestStatusLabel(t *testing.T) {
	m := New()
	for _, status := range []int{0, 100, 200, 499, 599, 600, 1000, -1} {
		if got := m.statusLabel(status); got != strconv.Itoa(status) {
			t.Fatalf("statusLabel(%d) = %q", status, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { m.Request("data", "GetObject", 200, 0, 4096, time.Millisecond) }); n != 0 {
		t.Fatalf("recording a request allocates %v times", n)
	}
}
