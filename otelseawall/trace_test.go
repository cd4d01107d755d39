package otelseawall

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/httpmw"
	"github.com/seawall-go/seawall/retry"
)

// logRecorder is an sdk/log Processor that keeps a copy of every record.
type logRecorder struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (p *logRecorder) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (p *logRecorder) Shutdown(context.Context) error                         { return nil }
func (p *logRecorder) ForceFlush(context.Context) error                       { return nil }

func (p *logRecorder) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.records = append(p.records, r.Clone())
	return nil
}

func (p *logRecorder) take() []sdklog.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.records
	p.records = nil
	return r
}

// counting wraps an AttemptObserver and counts the calls to Attempt.
type counting struct {
	seawall.AttemptObserver
	attempts atomic.Int32
}

func (c *counting) Attempt(ctx context.Context, a seawall.Attempt) {
	c.attempts.Add(1)
	c.AttemptObserver.Attempt(ctx, a)
}

// telemetry is a tracer provider and a logger provider that record
// everything.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tracer trace.Tracer
	logs   *logRecorder
	lp     *sdklog.LoggerProvider
}

func newTelemetry(t *testing.T, sampler sdktrace.Sampler) *telemetry {
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), logs: &logRecorder{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tel.tracer = tp.Tracer("test")
	tel.lp = sdklog.NewLoggerProvider(sdklog.WithProcessor(tel.logs))
	t.Cleanup(func() { tel.lp.Shutdown(context.Background()) })
	return tel
}

// failOnce is a real server that answers its first request with 503 and a
// hint of 2ms (Retry-After-Ms, preferred to Retry-After), then 200.
func failOnce(t *testing.T) *httptest.Server {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set(httpmw.RetryAfterMsHeader, "2")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// noDelay retries at once (a server's hint still counts), without a
// budget.
var noDelay = retry.Config{
	DelayFunc: func(int, error) time.Duration { return 0 },
	Budget:    retry.BudgetConfig{Disabled: true},
}

// roundTrip sends a GET to url through a Transport over base with
// observer o, under ctx.
func roundTrip(t *testing.T, ctx context.Context, base http.RoundTripper, o seawall.AttemptObserver, url string) {
	t.Helper()
	tr, err := httpmw.NewTransport(base, httpmw.WithRetry(noDelay), httpmw.WithAttemptObserver(o))
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "ok", string(b))
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func recordAttrs(r sdklog.Record) map[string]any {
	var kvs []attribute.KeyValue
	r.WalkAttributes(func(kv attribute.KeyValue) bool { kvs = append(kvs, kv); return true })
	return attrMap(kvs)
}

// TestAttemptObserverHTTP drives a real Transport against a real server
// that sheds the first attempt, inside a recording span: the span ends
// with the last attempt's facts, and each attempt has its log record,
// carrying the span's ids.
func TestAttemptObserverHTTP(t *testing.T) {
	for _, events := range []bool{false, true} {
		tel := newTelemetry(t, sdktrace.AlwaysSample())
		srv := failOnce(t)
		opts := []Option{WithLoggerProvider(tel.lp)}
		if events {
			opts = append(opts, WithSpanEvents())
		}
		o := &counting{AttemptObserver: NewAttemptObserver(opts...)}
		ctx, span := tel.tracer.Start(t.Context(), "GET")
		roundTrip(t, ctx, srv.Client().Transport, o, srv.URL)
		span.End()
		srv.Client().CloseIdleConnections()
		assert.EqualValues(t, 2, o.attempts.Load())

		ended := tel.spans.Ended()
		require.Len(t, ended, 1)
		s := ended[0]
		assert.Equal(t, map[string]any{
			"seawall.attempt.count":        int64(2),
			"http.request.resend_count":    int64(1),
			"seawall.attempt.outcome":      "success",
			"seawall.attempt.delay":        0.002,
			"seawall.attempt.delay_reason": "retry_after",
			"seawall.retry_after":          0.002, // the hint of the first attempt: the last the call met
		}, attrMap(s.Attributes()))

		first := map[string]any{
			"seawall.attempt.count":        int64(1),
			"http.request.resend_count":    int64(0),
			"seawall.attempt.outcome":      "shed",
			"seawall.attempt.delay":        0.0,
			"seawall.attempt.delay_reason": "none",
			"seawall.retry_after":          0.002,
			"seawall.attempt.last":         false,
			"http.response.status_code":    int64(503),
		}
		second := map[string]any{
			"seawall.attempt.count":        int64(2),
			"http.request.resend_count":    int64(1),
			"seawall.attempt.outcome":      "success",
			"seawall.attempt.delay":        0.002,
			"seawall.attempt.delay_reason": "retry_after",
			"seawall.attempt.last":         true,
			"http.response.status_code":    int64(200),
		}
		if events {
			require.Len(t, s.Events(), 2)
			for i, want := range []map[string]any{first, second} {
				assert.Equal(t, "seawall.attempt", s.Events()[i].Name)
				assert.Equal(t, want, attrMap(s.Events()[i].Attributes), "event %d: no error text", i+1)
			}
		} else {
			assert.Empty(t, s.Events(), "no span events unless asked")
		}

		logs := tel.logs.take()
		require.Len(t, logs, 2)
		for _, r := range logs {
			assert.Equal(t, "seawall.attempt", r.EventName())
			assert.Equal(t, s.SpanContext().TraceID(), r.TraceID())
			assert.Equal(t, s.SpanContext().SpanID(), r.SpanID())
			assert.Equal(t, "github.com/seawall-go/seawall/otelseawall", r.InstrumentationScope().Name)
		}
		assert.Equal(t, "WARN", logs[0].SeverityText())
		assert.Equal(t, "INFO", logs[1].SeverityText())
		got := recordAttrs(logs[0])
		assert.Equal(t, "httpmw: 503 Service Unavailable", got["exception.message"], "log records carry the error's text")
		assert.Contains(t, got, "exception.type")
		delete(got, "exception.message")
		delete(got, "exception.type")
		assert.Equal(t, first, got)
		assert.Equal(t, second, recordAttrs(logs[1]))
	}
}

// TestAttemptObserverRejected: an open breaker's refusal is recorded with
// the policy and its hint, and no resend count (nothing was sent).
func TestAttemptObserverRejected(t *testing.T) {
	tel := newTelemetry(t, sdktrace.AlwaysSample())
	o := NewAttemptObserver(WithLoggerProvider(tel.lp))
	ctx, span := tel.tracer.Start(t.Context(), "GET")
	o.Attempt(ctx, seawall.Attempt{
		Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeRejected,
		RejectedBy: "breaker", RetryAfter: 1500 * time.Millisecond, Last: true,
	})
	span.End()
	assert.Equal(t, map[string]any{
		"seawall.attempt.count":        int64(1),
		"seawall.attempt.outcome":      "rejected",
		"seawall.attempt.delay":        0.0,
		"seawall.attempt.delay_reason": "none",
		"seawall.rejected_by":          "breaker",
		"seawall.retry_after":          1.5,
	}, attrMap(tel.spans.Ended()[0].Attributes()))
	logs := tel.logs.take()
	require.Len(t, logs, 1)
	assert.Equal(t, "breaker", recordAttrs(logs[0])["seawall.rejected_by"])
}

// TestAttemptObserverGRPC: a gRPC attempt has no HTTP resend count, and
// its code (0 for OK) in its log record.
func TestAttemptObserverGRPC(t *testing.T) {
	tel := newTelemetry(t, sdktrace.AlwaysSample())
	o := NewAttemptObserver(WithLoggerProvider(tel.lp))
	ctx, span := tel.tracer.Start(t.Context(), "rpc")
	o.Attempt(ctx, seawall.Attempt{Protocol: seawall.ProtocolGRPC, Number: 2, Delay: time.Second, DelayReason: seawall.DelayPushback, Last: true})
	span.End()
	attrs := attrMap(tel.spans.Ended()[0].Attributes())
	assert.NotContains(t, attrs, "http.request.resend_count")
	assert.Equal(t, "pushback", attrs["seawall.attempt.delay_reason"])
	logs := tel.logs.take()
	require.Len(t, logs, 1)
	assert.Equal(t, int64(0), recordAttrs(logs[0])["rpc.grpc.status_code"])
}

// TestAttemptObserverNotRecording: a call without a span, or whose span
// is not sampled, is not observed: Attempt is never called, and nothing
// is recorded.
func TestAttemptObserverNotRecording(t *testing.T) {
	tel := newTelemetry(t, sdktrace.NeverSample())
	o := &counting{AttemptObserver: NewAttemptObserver(WithLoggerProvider(tel.lp), WithSpanEvents())}
	srv := failOnce(t)
	roundTrip(t, t.Context(), srv.Client().Transport, o, srv.URL)

	srv = failOnce(t)
	ctx, span := tel.tracer.Start(t.Context(), "GET")
	require.False(t, span.IsRecording())
	roundTrip(t, ctx, srv.Client().Transport, o, srv.URL)
	span.End()
	srv.Client().CloseIdleConnections()

	assert.Zero(t, o.attempts.Load(), "Attempt is never called")
	assert.Empty(t, tel.spans.Ended())
	assert.Empty(t, tel.logs.take())
}

// BenchmarkTransportObserver measures a Transport round trip that succeeds
// at once over an in-memory base (no I/O): without an observer; with
// NewAttemptObserver and a context without a span (not observed: must
// cost what no observer does, within noise, with the same allocations);
// and, each round trip in a new recording span, without and with the
// observer, its attempt set on the span and logged through an SDK logger
// provider whose processor drops the record: the difference between those
// two is what recording an attempt costs. The rows are named for
// benchstat: -col /observer compares them.
func BenchmarkTransportObserver(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("bench")
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(dropProcessor{}))
	defer lp.Shutdown(context.Background())
	o := NewAttemptObserver(WithLoggerProvider(lp))
	for _, bc := range []struct {
		name string
		opts []httpmw.TransportOption
		span bool // each round trip in a new recording span
	}{
		{"observer=none", nil, false},
		{"observer=not_recording", []httpmw.TransportOption{httpmw.WithAttemptObserver(o)}, false},
		{"observer=none_in_span", nil, true},
		{"observer=recording", []httpmw.TransportOption{httpmw.WithAttemptObserver(o)}, true},
	} {
		tr, err := httpmw.NewTransport(base, bc.opts...)
		if err != nil {
			b.Fatal(err)
		}
		req, err := http.NewRequest("GET", "http://account.internal/v1/users/7", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := req
				var span trace.Span
				if bc.span {
					var ctx context.Context
					ctx, span = tracer.Start(req.Context(), "GET")
					r = req.WithContext(ctx)
				}
				if _, err := tr.RoundTrip(r); err != nil {
					b.Fatal(err)
				}
				if span != nil {
					span.End()
				}
			}
		})
	}
}

// roundTripFunc is a fake base transport.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// dropProcessor is an sdk/log Processor that drops every record.
type dropProcessor struct{}

func (dropProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (dropProcessor) OnEmit(context.Context, *sdklog.Record) error           { return nil }
func (dropProcessor) Shutdown(context.Context) error                         { return nil }
func (dropProcessor) ForceFlush(context.Context) error                       { return nil }
