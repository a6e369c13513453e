package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name                 string
		live, scanned, floor uint64
		want                 int
	}{
		{"tiny live heap: the runtime's minimum goal is the floor", 1 * mib, 1 * mib, 16 * mib, 400},
		{"nothing scanned yet", 0, 0, 16 * mib, 400},
		{"live heap whose goal at the floor needs less", 4 * mib, 4 * mib, 16 * mib, 300},
		{"stacks count in the goal", 4 * mib, 6 * mib, 16 * mib, 200},
		{"half the floor live: the default", 8 * mib, 8 * mib, 16 * mib, 100},
		{"live heap above the floor: the default, not less", 64 * mib, 64 * mib, 16 * mib, 100},
		{"floor under the runtime's minimum", 1 * mib, 1 * mib, 2 * mib, 100},
	} {
		if got := percentFor(c.live, c.scanned, c.floor); got != c.want {
			t.Errorf("%s: percentFor(%d, %d, %d) = %d, want %d", c.name, c.live, c.scanned, c.floor, got, c.want)
		}
	}
}

// gogc is the GOGC in force.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

func collections() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitForGOGC collects until the keeper has set want, or fails.
func waitForGOGC(t *testing.T, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if gogc() == want {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("GOGC is %d, want %d", gogc(), want)
}

var (
	sink []byte
	held [][]byte
)

// churn allocates n bytes of garbage in 4 KiB pieces, as requests do.
func churn(n int) {
	for range n / 4096 {
		sink = make([]byte, 4096)
	}
}

func TestFewerCollectionsWhileLittleIsLive(t *testing.T) {
	const floor = 64 << 20
	k := Keep(floor)
	defer k.Stop()
	waitForGOGC(t, 1600) // floor / 4 MiB, the most the runtime's minimum goal allows
	before := collections()
	churn(512 << 20)
	// 512 MiB at a 64 MiB goal is 8 collections; at GOGC=100's 4 MiB
	// minimum it would be over 100.
	if n := collections() - before; n > 16 {
		t.Errorf("%d collections for 512 MiB of garbage with a 64 MiB floor, want at most 16", n)
	}
}

func TestDefaultOnceMuchIsLive(t *testing.T) {
	k := Keep(16 << 20)
	defer k.Stop()
	waitForGOGC(t, 400)
	held = make([][]byte, 32)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	waitForGOGC(t, 100) // 32 MiB live is above the floor: no higher GOGC
	held = nil
	waitForGOGC(t, 400) // and back when it is gone
}

func TestStopRestoresTheDefault(t *testing.T) {
	k := Keep(64 << 20)
	waitForGOGC(t, 1600)
	k.Stop()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after Stop is %d, want 100", got)
	}
	churn(64 << 20)
	runtime.GC()
	runtime.GC()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC collections after Stop is %d, want 100 (the keeper still adjusts)", got)
	}
	debug.SetGCPercent(100)
}
