package seawall

import (
	"context"
	"time"
)

// An AttemptObserver hears of each attempt of a call made through a client
// middleware (httpmw.Transport, grpcmw.Client): to record it on the call's
// span, say, as package otelseawall does. The middleware asks Observing
// once per call, and builds and reports nothing for a call it is false for,
// so that an observer costs a call that is not observed one method call.
//
// The methods are called on the caller's goroutine, outside any lock of
// the middleware, in attempt order; they may be called concurrently for
// different calls, and must not block.
type AttemptObserver interface {
	// Observing reports whether the call whose context is ctx is being
	// observed (its span is recording, say). It is asked once per call.
	Observing(ctx context.Context) bool
	// Attempt is called, with the call's context, after each attempt of an
	// observed call ends: once for a call refused before any attempt was
	// sent, and once more for a retry that a policy refused (see
	// [OutcomeRejected]).
	Attempt(ctx context.Context, a Attempt)
}

// Attempt is what an [AttemptObserver] hears of one attempt of a call.
type Attempt struct {
	// Protocol is the middleware's: ProtocolHTTP or ProtocolGRPC.
	Protocol Protocol
	// Number is the attempt's, 1 for the first; a retry refused by a policy
	// has a number too.
	Number int
	// Delay is how long the call waited before this attempt: 0 for the
	// first. DelayReason says why.
	Delay       time.Duration
	DelayReason DelayReason
	// Outcome is how the attempt went, as the resilience policies see it.
	Outcome AttemptOutcome
	// Last reports that no further attempt follows: the call ends with this
	// one. (An attempt after which the call meant to retry, but whose
	// context ended during the wait, is the last one reported, with Last
	// false.)
	Last bool
	// StatusCode is the answer's HTTP status, or the gRPC code as an int
	// (the local UNAVAILABLE of a rejected gRPC attempt too); 0 if there
	// is none (an HTTP attempt that got no answer, a rejected HTTP attempt).
	StatusCode int
	// RejectedBy names, for an attempt with OutcomeRejected, the local
	// policy that refused it: "breaker" (an open circuit breaker),
	// "throttle" (a client-side throttle) or "retry_budget" (the retry
	// budget refused the retry); "" otherwise. The set is bounded: these
	// three, and no other without a new release.
	RejectedBy string
	// RetryAfter is the retry-after hint carried by the rejection or by the
	// server's refusal (Retry-After, gRPC pushback), if any: 0 if none.
	RetryAfter time.Duration
	// Err is the attempt's error, if any: for an HTTP answer with a
	// retried status, 429, or 500 and above, an httpmw.StatusError. Its
	// text may go into a log record, never into a metric attribute (it is
	// unbounded).
	Err error
}

// Protocol is the protocol of the middleware that made an [Attempt].
type Protocol uint8

const (
	// ProtocolHTTP is httpmw's Transport.
	ProtocolHTTP Protocol = iota + 1
	// ProtocolGRPC is grpcmw's Client.
	ProtocolGRPC
)

// String returns "http", "grpc", or "unknown".
func (p Protocol) String() string {
	switch p {
	case ProtocolHTTP:
		return "http"
	case ProtocolGRPC:
		return "grpc"
	}
	return "unknown"
}

// DelayReason is why a call waited before an attempt: what decided the
// delay of the retry loop (retry.Loop.Delay).
type DelayReason uint8

const (
	// DelayNone: no wait, the first attempt (or a retry refused before
	// the loop decided a delay).
	DelayNone DelayReason = iota
	// DelayBackoff: the retry's backoff (exponential, constant, a
	// function), which no hint raised.
	DelayBackoff
	// DelayRetryAfter: a retry-after hint of the previous attempt's error
	// (an HTTP Retry-After, a rejection's hint) raised the delay above the
	// backoff.
	DelayRetryAfter
	// DelayPushback: an exact pushback (gRPC's grpc-retry-pushback-ms,
	// seawall.WithPushback) set the delay in place of the backoff.
	DelayPushback
	numDelayReasons
)

var delayReasonNames = [numDelayReasons]string{"none", "backoff", "retry_after", "pushback"}

// String returns the reason's snake_case name: "none", "backoff",
// "retry_after", "pushback" (or "unknown").
func (r DelayReason) String() string {
	if r < numDelayReasons {
		return delayReasonNames[r]
	}
	return "unknown"
}

// AttemptOutcome is how an [Attempt] went, as the resilience policies see
// it.
type AttemptOutcome uint8

const (
	// OutcomeSuccess: the attempt got an answer that is no failure (any
	// HTTP status below 500 but 429 and the retried ones; gRPC OK).
	OutcomeSuccess AttemptOutcome = iota
	// OutcomeFailure: an error, a retried status, an HTTP status of 500
	// or above, a gRPC error code.
	OutcomeFailure
	// OutcomeRejected: refused locally by a policy, no request sent (see
	// Attempt.RejectedBy).
	OutcomeRejected
	// OutcomeShed: the server refused the work for overload
	// (seawall.IsOverload): an HTTP 429, or 503 with a retry-after hint; a
	// gRPC RESOURCE_EXHAUSTED, or UNAVAILABLE with pushback.
	OutcomeShed
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"success", "failure", "rejected", "shed"}

// String returns the outcome's snake_case name: "success", "failure",
// "rejected", "shed" (or "unknown").
func (o AttemptOutcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// OutcomeOf returns the outcome of an attempt that was sent and ended with
// err as the policies see it: OutcomeSuccess if err is nil, OutcomeShed if
// [IsOverload] is true of it, else OutcomeFailure. Middleware use it for
// attempts they sent; a rejected attempt is theirs to name.
func OutcomeOf(err error) AttemptOutcome {
	switch {
	case err == nil:
		return OutcomeSuccess
	case IsOverload(err):
		return OutcomeShed
	}
	return OutcomeFailure
}
