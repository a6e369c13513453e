package limits

// Kind is one of the three limits, each with its own failure policy.
type Kind uint8

const (
	// Uses counts the uses of a presigned URL.
	Uses Kind = iota
	// Requests is a client key's request rate.
	Requests
	// Bandwidth is a client key's bytes per second.
	Bandwidth
)

func (k Kind) String() string {
	switch k {
	case Uses:
		return "presigned_uses"
	case Requests:
		return "requests"
	case Bandwidth:
		return "bandwidth"
	}
	return "unknown"
}

// Policy is what a limit answers when its store cannot: deny (FailClosed) or allow (FailOpen).
// The zero value means "the default for that kind" in Options and "none, the store answered"
// in a Decision.
type Policy uint8

const (
	FailClosed Policy = iota + 1
	FailOpen
)

func (p Policy) String() string {
	switch p {
	case FailClosed:
		return "fail_closed"
	case FailOpen:
		return "fail_open"
	}
	return "none"
}

// Policies holds one failure policy per kind; a zero field takes the default. The defaults
// follow what each limit protects: a presigned URL's use limit is a security promise (a 1-use
// link must not become a 2-use link because Redis was away), so it fails closed; rates and
// bandwidth protect capacity, and refusing every request because the limiter's store is down
// would turn a Redis outage into a proxy outage, so they fail open.
type Policies struct {
	Uses      Policy
	Requests  Policy
	Bandwidth Policy
}

func (p Policies) of(k Kind) Policy {
	chosen, fallback := p.Bandwidth, FailOpen
	switch k {
	case Uses:
		chosen, fallback = p.Uses, FailClosed
	case Requests:
		chosen = p.Requests
	}
	if chosen == 0 {
		return fallback
	}
	return chosen
}
