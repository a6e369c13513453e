package h1

import (
	"io"
	"sync"
)

// fixedBody is a request body of declared length, read as net/http's reads
// one: the last bytes come with io.EOF, and a connection that ends before
// the length gives io.ErrUnexpectedEOF.
type fixedBody struct {
	// mu serializes reads, as net/http's body does: a goroutine of the
	// handler still reading when the answer is done takes turns with the
	// drain instead of racing it.
	mu     sync.Mutex
	src    io.LimitedReader
	sawEOF bool
}

func (b *fixedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sawEOF {
		return 0, io.EOF
	}
	n, err := b.src.Read(p)
	if err == io.EOF {
		b.sawEOF = true
		if b.src.N > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err == nil && n > 0 && b.src.N == 0 {
		b.sawEOF = true
		err = io.EOF
	}
	return n, err
}

// Close does nothing: h1 never closes a request body (requestBody.Close
// leaves the rest to drain), so there is no state to end.
func (b *fixedBody) Close() error { return nil }
