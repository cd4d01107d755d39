// Package throttle provides client-side adaptive throttling: a client that
// sees its backend refuse work rejects some of its own requests, before
// they reach the backend, in proportion to the refusals.
//
// This is the SRE book's algorithm ("Handling Overload", client-side
// throttling). Over a sliding window (2 minutes), the client counts its
// requests and the backend's accepts, and rejects a new request with
// probability
//
//	max(0, (requests − K × accepts) / (requests + 1))
//
// (K = 2 by default), capped (0.9 by default). A backend that accepts
// everything is never throttled; one that refuses half its load gets about
// K times what it accepts; the probability falls as soon as accepts come
// back. No limit is configured: the throttle follows the backend.
//
// One departure from the book, on by default: once the backend has
// accepted a request after its latest refusal (LiftAfter), the throttle
// stops rejecting until the next refusal. The window remembers an
// overload for two minutes, and the formula alone keeps rejecting a share
// of the requests to a backend that has recovered until the accepts
// outweigh it: in the retry-storm demo, 512 callers of a few requests a
// second each went on failing 7% of their requests for 6s after a spike
// the backend had long absorbed. The next refusal restores the formula at
// once, the whole window with it, so a backend still overloaded is
// throttled again after one request. NoLift keeps the formula alone.
//
// # Shedding is not failure
//
// A refusal is a healthy backend saying "not now": by default, an error for
// which seawall.IsOverload is true (a seawall.ErrRejected with a retry-after
// hint; httpmw and grpcmw make one of a 429, a 503 with Retry-After, a
// RESOURCE_EXHAUSTED and an UNAVAILABLE with pushback). Errors, timeouts
// and 5xx answers are accepts here (the backend took the work) and failures
// for a circuit breaker; a refusal is the other way round. A local breaker's
// open rejection and the caller's cancellation are not the backend's answer
// and are not counted (see [Permit.Done]).
//
// # Two layers
//
// The primitive allocates nothing and, while the backend accepts, takes no
// lock and reads no clock (a healthy throttle's cost is one atomic load
// and one per-P increment a call):
//
//	p, err := t.Allow()
//	if err != nil {
//		return err // throttle.ErrThrottled
//	}
//	err = call()
//	p.Done(err)
//
// The convenience, [Throttle.Do], runs a function and satisfies
// seawall.Policy. A local rejection is [ErrThrottled], which matches
// seawall.ErrRejected and carries no hint, so that no retry repeats it.
//
// # Where it goes
//
// Put it around each attempt, inside the retry and beside the breaker: each
// attempt is a request to the backend, and a throttled attempt must not
// reach it. httpmw.WithThrottle and grpcmw.WithThrottle do that.
package throttle
