// Package limits keeps the counts behind the proxy's limits: how often a presigned URL has been
// used, how many requests a client key makes per second, and how many bytes per second it moves.
//
// A Limiter answers those questions from a Store: the process's own memory (one proxy) or Redis
// (a fleet, where every instance must see the same counts or a limit is no limit). When Redis does
// not answer in time, the Limiter applies a failure policy per kind of limit (FailClosed or
// FailOpen) and says so in the Decision. docs/limits.md has the semantics, the Redis key layout
// and what is guaranteed while Redis is down.
package limits
