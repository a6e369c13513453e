package main

import (
	"os"

	"github.com/object-storage-proxy/osp/internal/gcfloor"
)

// gcHeapFloor is the heap the proxy may fill before Go's collector runs
// while little of it is live (package gcfloor says why). 16 MiB: four
// times Go's own floor, a quarter of the collections, about 10 MiB more
// RSS. 32 MiB (GOGC=800) did no better within the A/B's noise, for 26 MiB
// more RSS.
const gcHeapFloor = 16 << 20

// The collector is the process's: set once, when the library is loaded.
func init() {
	// An empty GOGC is no choice: Go's runtime reads it as its default.
	if os.Getenv("GOGC") != "" {
		return // the operator's choice wins
	}
	gcfloor.Keep(gcHeapFloor)
}
