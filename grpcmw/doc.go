// Package grpcmw puts seawall's policies on gRPC: client interceptors that
// retry safely and fail fast, and server interceptors that shed load with
// a pushback the clients honour, so that backpressure travels end to end.
//
// A [Client] holds the client interceptors ([Client.Unary],
// [Client.Stream]): retries (off unless configured) on UNAVAILABLE or the
// codes you choose, honouring the server's grpc-retry-pushback-ms trailer
// exactly (gRFC A6), within a retry budget; a breaker per method or per
// target; a timeout per attempt; never past the call's deadline. Streams
// are retried only until they commit (see [Client]); with WithThrottle, a
// client-side throttle in front of every attempt, after the breaker; with
// WithHedge, hedging of unary calls (gRFC A6): a slow attempt gets another
// alongside it, within the retry budget and while the breaker is closed
// (streams are not hedged). [CallMaxAttempts], [CallRetryCodes] and
// [CallNoHedge] override the settings for one call. Nothing else is chained: one interceptor per kind of call.
//
// A [Preset], built by [NewPreset] from a preset.Config (which operators
// can keep in a JSON or YAML file, validated across its settings), is the
// standard pipeline of package preset around a Client: a rate limiter, a
// total timeout, then the Client's retry, per-method breaker and attempt
// timeout.
//
// Shedding is not failure: a RESOURCE_EXHAUSTED, or an UNAVAILABLE with
// pushback, reaches the retry, the breaker and the throttle as an error for
// which seawall.IsOverload is true. The retry waits the pushback, the
// breaker ignores it (with breaker.DefaultClassify), the throttle counts it
// as a refusal; other errors and timeouts are breaker failures.
//
// A [Server] holds the server interceptors ([Server.Unary],
// [Server.Stream]): calls whose client has gone or whose deadline has
// passed are not started; a rate limit and a per-client rate limit answer
// RESOURCE_EXHAUSTED; load shedding with a bulkhead answers UNAVAILABLE (or
// RESOURCE_EXHAUSTED); every rejection carries a pushback when a wait is
// known. Its admit path allocates nothing. For game days,
// WithFaultInjection delays calls or ends them with a chosen code while its
// fault.Injector is enabled; no metadata can turn faults on.
//
// Deadlines need nothing from this package: gRPC propagates them itself
// (grpc-timeout), and the server interceptors refuse to start a call whose
// deadline has passed.
//
// When you use this package's retries, dial with grpc.WithDisableRetry()
// (or give the service config no retryPolicy): gRPC's own retries would run
// inside each of these attempts, and the two would multiply.
package grpcmw
