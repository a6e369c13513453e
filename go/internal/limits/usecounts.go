package limits

import (
	"container/heap"
	"sync"
	"time"
)

// useCounts is the in-memory table of presigned-URL use counts: at most max entries, each
// dropped when its URL expires (found through a heap ordered by expiry, so making room costs
// O(log n) and never drops a live count).
type useCounts struct {
	mu       sync.Mutex
	max      int
	byKey    map[string]*useCount
	byExpiry expiryHeap
}

type useCount struct {
	key     string
	n       int64
	expires time.Time
}

func newUseCounts(max int) *useCounts {
	return &useCounts{max: max, byKey: make(map[string]*useCount)}
}

// add counts one use of key and returns the count including it, or ErrFull when the table
// holds max unexpired counts and key is not among them.
func (u *useCounts) add(key string, expires, now time.Time) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.dropExpired(now)
	if c, ok := u.byKey[key]; ok {
		c.n++
		return c.n, nil
	}
	if len(u.byKey) >= u.max {
		return 0, ErrFull
	}
	c := &useCount{key: key, n: 1, expires: expires}
	u.byKey[key] = c
	heap.Push(&u.byExpiry, c)
	return 1, nil
}

func (u *useCounts) dropExpired(now time.Time) {
	for len(u.byExpiry) > 0 && !now.Before(u.byExpiry[0].expires) {
		c := heap.Pop(&u.byExpiry).(*useCount)
		delete(u.byKey, c.key)
	}
}

func (u *useCounts) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.byKey)
}

type expiryHeap []*useCount

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(*useCount)) }
func (h *expiryHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}
