// Package seawall keeps a service standing when a dependency it calls is
// overloaded or failing.
//
// The root package holds what every policy shares:
//
//   - [Policy], the interface every policy satisfies with its Do method, and
//     [Pipeline], which composes policies (the first is the outermost);
//   - [Get], a generic helper for operations that return a value;
//   - one error model: every rejection by any policy (an open breaker, a full
//     bulkhead, a refusing limiter, a spent retry budget) matches [ErrRejected]
//     with errors.Is while keeping its own sentinel; any error may carry a
//     retry-after hint ([WithRetryAfter], [RetryAfter]); and [Permanent] marks
//     an error that no retry will repeat.
//
// The policies themselves live in sub-packages, e.g.
// github.com/seawall-go/seawall/breaker.
package seawall
