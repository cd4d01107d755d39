// Package httpmw puts seawall's policies on net/http: server middleware
// that sheds load before it costs anything, and a client [Transport] that
// retries safely, so that backpressure travels end to end.
//
// # Server
//
// A [Server], built by [NewServer] from options, wraps an http.Handler, a
// whole server's or a single route's of an http.ServeMux, in the policies
// it was given; [Server.Handler] is a func(http.Handler) http.Handler, the
// usual shape of middleware. The policies run in this order, outermost
// first, whatever the order of the options:
//
//   - WithDeadline does not start a request whose client has gone, and
//     gives the handler the client's deadline from TimeoutHeader, capped.
//   - WithFaultInjection, for game days: while its fault.Injector is
//     enabled, requests are delayed, answered with a chosen status, or
//     have their connection aborted; a header can ask for a fault only if
//     the option allows it, and only while the Injector is enabled.
//   - WithRateLimit admits requests at a limiter's rate; WithKeyedRateLimit
//     gives each client its own limit, keyed by [RemoteIP] (the default),
//     [ClientIP] (behind trusted reverse proxies) or [HeaderKey] (an API
//     key). Refused requests get 429 Too Many Requests with Retry-After.
//   - WithLoadShed bounds the requests running at once with a bulkhead: a
//     small queue, a bounded wait, then 503 Service Unavailable.
//
// Rejections are written by [WriteRejection] (a status, Retry-After in whole
// seconds rounded up, a one-line text body) or by a [RejectFunc] of your own
// (WithRejectFunc), say for application/problem+json. Misuse (a nil
// limiter, a negative duration) is an error from NewServer or
// [NewTransport] that names the option and the value; nothing in this
// package panics on it.
//
// # Client
//
// A [Transport] wraps a base http.RoundTripper. It retries only what is safe
// to replay, on connection errors and on 502, 503, 504 and 429, with
// jittered backoff, honouring Retry-After, within a retry budget; it can
// put a breaker in front of each host, a client-side throttle
// (WithThrottle) in front of every attempt, and time each attempt; it never
// overruns the request's context deadline, and it tells the server how long
// the caller will wait (TimeoutHeader). See [Transport] for the rules.
//
// Shedding is not failure: a 429, or a 503 with Retry-After, reaches the
// retry, the breaker and the throttle as a [StatusError] for which
// seawall.IsOverload is true. The retry waits its hint, the breaker ignores
// it (with breaker.DefaultClassify), the throttle counts it as a refusal.
// Errors, timeouts and other 5xx answers are breaker failures, and accepts
// for the throttle. Per attempt, the breaker is asked first, then the
// throttle: an open breaker's rejections are not the server's refusals, and
// a throttled attempt is neither sent nor retried.
//
// # Deadline propagation
//
// A Transport sends, on every attempt whose context has a deadline, the
// header TimeoutHeader ("Seawall-Timeout") with the time left in whole
// milliseconds, rounded down ("850"): a relative time, so that the two
// machines' clocks need not agree. A [Server] with WithDeadline gives the
// handler's context that timeout, capped by the maximum it was given
// (DefaultMaxTimeout, one minute, is a sane one), so that the handler, and the calls it makes through its own
// Transport, stop when nobody waits for the answer any more.
package httpmw
