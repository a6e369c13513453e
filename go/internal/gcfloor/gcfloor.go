// Package gcfloor lets the heap grow to a floor before Go's collector runs,
// while what is live is small, and leaves the collector as it is by default
// once the live heap is large.
//
// Under a load of small requests almost everything the proxy allocates is
// the request's own garbage and its live heap stays near 2 MB. At Go's
// default (GOGC=100, which collects at twice the live heap but not below
// 4 MiB) the collector then runs about every 30 ms and takes about 7% of
// the proxy's CPU. A higher GOGC for the whole process would collect less
// often, but would also let a heap that is large because much of it is
// live (many open connections) grow to several times that. So the GOGC
// is set again after every collection, from what the collection found
// live: high enough that the next one comes at the floor, never under 100.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// minimumAt100 is the Go runtime's smallest heap goal at GOGC=100; it
// scales with GOGC (runtime/mgcpacer.go, defaultHeapMinimum), so a GOGC
// above floor/minimumAt100 would set a goal above the floor by itself.
const minimumAt100 = 4 << 20

// The runtime's own figures from the last collection, the inputs of its
// heap goal: goal = live + (live + stacks + globals) * GOGC/100.
var sampleNames = [...]string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Keeper sets GOGC after every collection; Stop ends that.
type Keeper struct {
	floor   uint64
	mu      sync.Mutex // serializes adjust with Stop
	stopped bool
	percent int
	samples [len(sampleNames)]metrics.Sample
}

// Keep starts keeping the heap goal at floor bytes or more. The caller
// should only start one: GOGC is the process's.
func Keep(floor uint64) *Keeper {
	k := &Keeper{floor: floor, percent: 100}
	for i, name := range sampleNames {
		k.samples[i].Name = name
	}
	k.adjust()
	return k
}

// Stop stops adjusting and sets GOGC back to 100.
func (k *Keeper) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	debug.SetGCPercent(100)
}

// adjust sets GOGC from the last collection's figures, then asks to be
// called again after the next one: the cleanup of an object nothing
// refers to runs once a collection has found it unreachable.
func (k *Keeper) adjust() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	metrics.Read(k.samples[:])
	live := k.samples[0].Value.Uint64()
	scanned := live + k.samples[1].Value.Uint64() + k.samples[2].Value.Uint64()
	if p := percentFor(live, scanned, k.floor); p != k.percent {
		debug.SetGCPercent(p)
		k.percent = p
	}
	runtime.AddCleanup(new(collected), (*Keeper).adjust, k)
}

// collected is the object whose cleanup marks a collection; 16 bytes, so
// that the runtime does not pack it with others into one allocation.
type collected [16]byte

// percentFor is the GOGC at which the collector would next run when the
// heap reaches floor, given the live bytes and scanned bytes (live, stacks
// and globals) of the last collection: at least 100, and no more than the
// GOGC at which the runtime's own minimum goal reaches the floor.
func percentFor(live, scanned, floor uint64) int {
	most := floor * 100 / minimumAt100
	p := most // before the first collection nothing is live
	switch {
	case live >= floor:
		p = 100
	case scanned > 0:
		p = (floor - live) * 100 / scanned
	}
	return int(max(100, min(p, most)))
}
