// Package preset is the standard resilience pipeline of a client, built
// from one [Config] that operators can keep in a JSON or YAML file, and
// validated as a whole before anything is built: a setting that is valid
// on its own but defeats another (an attempt timeout longer than the
// call's, a breaker that could never trip) is refused at start-up.
//
// [NewHTTPTransport] builds it for net/http (an http.RoundTripper), and
// grpcmw.NewPreset, in the grpcmw module, for gRPC (client interceptors).
//
// # The pipeline
//
// A call goes through the stages in this order, outermost first, the order
// of Microsoft.Extensions.Http.Resilience's standard handler:
//
//  1. Rate limiter (optional). It is outermost, so it limits calls, not
//     attempts: a call takes one token, however many times it is retried.
//     A call waits for its token within its total timeout, and is refused
//     at once (ratelimit.ErrLimited, with the wait as its retry-after hint)
//     if the token would come after its deadline. Retries are bounded by
//     the retry budget instead.
//  2. Total timeout. Its clock starts with the call, before the limiter's
//     wait, so it bounds everything the call does: the wait for a token,
//     every attempt, every wait between attempts, and the reading of the
//     response (until an HTTP response's body is closed, or a gRPC stream
//     ends).
//  3. Retry, with its budget: attempts that fail with a retryable error
//     are made again after a jittered exponential delay, never past the
//     total timeout's deadline, and while the budget (10% of calls, by
//     default) allows.
//  4. Circuit breaker, one per host (HTTP) or per method (gRPC): each
//     attempt asks it first, and an open breaker fails the call at once,
//     without waiting out its open period. Being inside the retry, it sees
//     every attempt.
//  5. Attempt timeout: each attempt has its own timeout, so that one slow
//     attempt leaves time for another.
//
// # Defaults
//
// Every setting left zero (or absent from the file) takes its default.
// The defaults are Microsoft's standard handler's, but for the rate limit,
// which must be sized for the dependency, so the preset has none:
//
//	setting                   default
//	rateLimit                 none (ratelimit.Config has no default rate)
//	timeout                   30s
//	retry.maxAttempts         4, including the first: 3 retries (1: no retry)
//	retry.delay               2s, before jitter, doubling (retry.multiplier 2)
//	retry.maxDelay            10s, or retry.delay if longer
//	retry.jitter              "full"
//	retry.maxHint             5m
//	retry.budget              ratio mode: 10% of the calls of the last 5s,
//	                          plus 1 retry per 5s while most calls succeed
//	breaker.failureRate       0.1, if no trip rule is set (consecutiveFailures,
//	                          failureRate, slowCallRate)
//	breaker.timeWindow        30s, if a rate rule is on and no window is set
//	breaker.timeWindowBuckets 10
//	breaker.minimumCalls      100 (with a countWindow: min(100, countWindow))
//	breaker.openDuration      5s
//	disableBreaker            false
//	attemptTimeout            10s
//
// Beyond these, each field of retry.Config and breaker.Config takes its
// own package's default. To turn a stage off: leave rateLimit out (no
// limiter); set retry.maxAttempts to 1 (no retry); set disableBreaker
// (no breaker); set attemptTimeout to timeout (no attempt timeout of its
// own). The total timeout cannot be turned off, only lengthened.
//
// # Validation
//
// [Config.Validate] (which [Load] and the builders call) checks each
// stage's settings as its package does, then the stages against one
// another; each error names the settings as the file spells them, and
// their values:
//
//   - attemptTimeout may not exceed timeout;
//   - a breaker's timeWindow (with a rate rule) must be at least twice
//     attemptTimeout;
//   - the retries' delays before jitter must add up to less than timeout;
//   - with a rate limit, rateLimit.rate × breaker.timeWindow must reach
//     breaker.minimumCalls, or the breaker could never trip.
//
// This last is an error, not a warning: a breaker that can never trip is
// protection silently missing, better refused when the service starts
// than discovered in an outage. The message says the largest reachable
// value and both ways out.
//
// # Configuration files
//
// [Load] reads JSON or YAML. Durations are Go duration strings ("250ms")
// or integer nanoseconds (so a bare 30 is 30ns: write "30s"). A misspelt
// key, at any depth, is an error naming its path and line, and so is a
// key given twice. The defaults written out in full, in JSON:
//
//	{
//	  "timeout": "30s",
//	  "attemptTimeout": "10s",
//	  "retry": {"maxAttempts": 4, "delay": "2s"},
//	  "breaker": {"failureRate": 0.1, "timeWindow": "30s", "minimumCalls": 100, "openDuration": "5s"}
//	}
//
// and a configuration with a rate limit, in YAML:
//
//	rateLimit:
//	  rate: 50     # calls per second
//	  burst: 10
//	timeout: 5s
//	attemptTimeout: 1s
//	retry:
//	  maxAttempts: 3
//	  delay: 200ms
//	  budget:
//	    ratio: 0.2
//	breaker:
//	  failureRate: 0.5
//	  timeWindow: 10s
//	  minimumCalls: 20
package preset
