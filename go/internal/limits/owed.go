package limits

import "sync"

// owed is what this process let through of a bandwidth budget on a shared store without paying
// it yet: the bytes of bodies that ended before a full batch. Charging each such body on Redis
// would cost a round trip per small request; owing them makes one round trip per batch of them.
// A key's debt stays under one batch (the body that brings it to a batch pays that batch), so a
// key runs ahead of its budget by less than one batch per process, beyond the one batch per open
// stream. Debts live in one table of at most max keys; when it is full, a new key's body is
// paid at once, as if nothing were owed.
type owed struct {
	mu    sync.Mutex
	max   int
	bytes map[string]int
}

func newOwed(max int) *owed {
	return &owed{max: max, bytes: make(map[string]int)}
}

// add owes n more bytes of key and returns what is due now: whole batches once the debt
// reaches one (the rest stays owed), or n itself when the table has no room for key.
func (o *owed) add(key string, n, batch int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	debt, ok := o.bytes[key]
	if !ok && len(o.bytes) >= o.max {
		return n
	}
	debt += n
	// More than one batch is due only after a reload lowered the limit, and so the batch.
	due := debt - debt%batch
	if debt -= due; debt == 0 {
		delete(o.bytes, key)
	} else {
		o.bytes[key] = debt
	}
	return due
}
