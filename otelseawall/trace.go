package otelseawall

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/seawall-go/seawall"
)

// attemptEvent is the event name of the log records (and, with
// WithSpanEvents, of the span events) of an attempt.
const attemptEvent = "seawall.attempt"

// The attributes of an attempt.
const (
	attrCount       = attribute.Key("seawall.attempt.count")
	attrResendCount = attribute.Key("http.request.resend_count") // OTel semconv, stable, HTTP client spans
	attrOutcome     = attribute.Key("seawall.attempt.outcome")
	attrDelay       = attribute.Key("seawall.attempt.delay")
	attrDelayReason = attribute.Key("seawall.attempt.delay_reason")
	attrRejectedBy  = attribute.Key("seawall.rejected_by")
	attrRetryAfter  = attribute.Key("seawall.retry_after")
	attrLast        = attribute.Key("seawall.attempt.last")
	attrHTTPStatus  = attribute.Key("http.response.status_code") // OTel semconv
	attrGRPCStatus  = attribute.Key("rpc.grpc.status_code")      // OTel semconv
	attrExcMessage  = attribute.Key("exception.message")         // OTel semconv
)

// WithLoggerProvider sets the provider of the logger that the attempt
// observer emits its log records with, in place of the global one
// (otel.GetLoggerProvider). A nil lp keeps the global one.
func WithLoggerProvider(lp log.LoggerProvider) Option {
	return func(c *config) {
		if lp != nil {
			c.loggerProvider = lp
		}
	}
}

// WithSpanEvents makes the attempt observer add a span event
// "seawall.attempt" per attempt to the call's span, with the attributes of
// the attempt's log record (but not the error's text), as well as emit the
// log record. It is off by default: span events are giving way to
// log-based events (OTEP 4430), which the log records are.
func WithSpanEvents() Option {
	return func(c *config) { c.spanEvents = true }
}

// NewAttemptObserver returns a seawall.AttemptObserver, for
// httpmw.WithAttemptObserver and grpcmw.WithAttemptObserver, that records
// each attempt of a call on the span in the call's context
// (trace.SpanFromContext; start it with otelhttp, otelgrpc or your own
// tracer), and emits a log record per attempt. A call whose span is not
// recording (none, or not sampled) is not observed: the middleware builds
// nothing for it.
//
// After each attempt, these attributes are set on the span, overwriting
// those of the attempts before, so that the span ends with the last
// attempt's:
//
//   - seawall.attempt.count: the attempts so far, a retry refused by a
//     policy included (int)
//   - http.request.resend_count: the attempts sent before this one (OTel
//     semantic conventions, int); for HTTP only (seawall.ProtocolHTTP), and
//     only after an attempt that was sent (not one rejected locally)
//   - seawall.attempt.outcome: success, failure, rejected or shed
//   - seawall.attempt.delay: the wait before the attempt, in seconds
//     (float)
//   - seawall.attempt.delay_reason: none, backoff, retry_after or pushback
//   - seawall.rejected_by: breaker, throttle or retry_budget, for a
//     rejected attempt (the last of its call)
//   - seawall.retry_after: the retry-after hint of the rejection or of the
//     server's refusal, in seconds (float), when there is one: the span
//     keeps the last hint its call met
//
// Each attempt also emits a log record, with the call's context (so it
// carries the span's trace and span ids), through the logger of the
// LoggerProvider (WithLoggerProvider; instrumentation scope
// "github.com/seawall-go/seawall/otelseawall"): event name
// "seawall.attempt", severity INFO for a success and WARN otherwise, the
// attributes above (those it has) and seawall.attempt.last (bool), the
// status (http.response.status_code for HTTP, rpc.grpc.status_code for
// gRPC), and the attempt's error, if any, as the record's error and its
// exception.message. (The error's text goes into log records only, never
// into span or metric attributes.) The record is not built if the logger
// is not enabled for it. With WithSpanEvents, a span event too.
//
// The observer is safe for concurrent use by multiple goroutines.
func NewAttemptObserver(opts ...Option) seawall.AttemptObserver {
	c := newConfig(opts)
	return &attemptObserver{logger: c.loggerProvider.Logger(ScopeName), spanEvents: c.spanEvents}
}

// attemptObserver is NewAttemptObserver's.
type attemptObserver struct {
	logger     log.Logger
	spanEvents bool
}

// Observing reports whether ctx's span is recording.
func (o *attemptObserver) Observing(ctx context.Context) bool {
	return trace.SpanFromContext(ctx).IsRecording()
}

// Attempt records a on ctx's span and emits its log record.
func (o *attemptObserver) Attempt(ctx context.Context, a seawall.Attempt) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 11)
	attrs = append(attrs,
		attrCount.Int(a.Number),
		attrOutcome.String(a.Outcome.String()),
		attrDelay.Float64(a.Delay.Seconds()),
		attrDelayReason.String(a.DelayReason.String()),
	)
	if a.Protocol == seawall.ProtocolHTTP && a.Outcome != seawall.OutcomeRejected {
		attrs = append(attrs, attrResendCount.Int(a.Number-1))
	}
	if a.RejectedBy != "" {
		attrs = append(attrs, attrRejectedBy.String(a.RejectedBy))
	}
	if a.RetryAfter > 0 {
		attrs = append(attrs, attrRetryAfter.Float64(a.RetryAfter.Seconds()))
	}
	span.SetAttributes(attrs...)

	attrs = append(attrs, attrLast.Bool(a.Last))
	switch a.Protocol {
	case seawall.ProtocolHTTP:
		if a.StatusCode != 0 {
			attrs = append(attrs, attrHTTPStatus.Int(a.StatusCode))
		}
	case seawall.ProtocolGRPC:
		attrs = append(attrs, attrGRPCStatus.Int(a.StatusCode))
	}
	if o.spanEvents {
		span.AddEvent(attemptEvent, trace.WithAttributes(attrs...))
	}
	sev := log.SeverityWarn
	if a.Outcome == seawall.OutcomeSuccess {
		sev = log.SeverityInfo
	}
	if !o.logger.Enabled(ctx, log.EnabledParameters{Severity: sev, EventName: attemptEvent}) {
		return
	}
	var rec log.Record
	rec.SetEventName(attemptEvent)
	rec.SetTimestamp(time.Now())
	rec.SetSeverity(sev)
	rec.SetSeverityText(sev.String())
	if a.Err != nil {
		attrs = append(attrs, attrExcMessage.String(a.Err.Error()))
		rec.SetErr(a.Err)
	}
	rec.AddAttributes(attrs...)
	o.logger.Emit(ctx, rec)
}
