package grpcmw

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// noDelay retries at once (pushback still counts), without a budget.
var noDelay = retry.Config{
	DelayFunc: func(int, error) time.Duration { return 0 },
	Budget:    retry.BudgetConfig{Disabled: true},
}

func TestUnaryRetryCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []ClientOption
		call     []grpc.CallOption
		code     codes.Code
		attempts int
		want     codes.Code
	}{
		{"retries off by default", nil, nil, codes.Unavailable, 1, codes.Unavailable},
		{"UNAVAILABLE retried", []ClientOption{WithRetry(noDelay)}, nil, codes.Unavailable, 3, codes.OK},
		{"INTERNAL not retried", []ClientOption{WithRetry(noDelay)}, nil, codes.Internal, 1, codes.Internal},
		{"RESOURCE_EXHAUSTED not retried", []ClientOption{WithRetry(noDelay)}, nil, codes.ResourceExhausted, 1, codes.ResourceExhausted},
		{"configured codes", []ClientOption{WithRetry(noDelay), WithRetryCodes(codes.Internal)}, nil, codes.Internal, 3, codes.OK},
		{"configured codes replace the default", []ClientOption{WithRetry(noDelay), WithRetryCodes(codes.Internal)}, nil, codes.Unavailable, 1, codes.Unavailable},
		{"per call: no retry", []ClientOption{WithRetry(noDelay)}, []grpc.CallOption{CallMaxAttempts(1)}, codes.Unavailable, 1, codes.Unavailable},
		{"per call: more attempts", []ClientOption{WithRetry(noDelay)}, []grpc.CallOption{CallMaxAttempts(5)}, codes.Unavailable, 3, codes.OK},
		{"per call: codes", []ClientOption{WithRetry(noDelay)}, []grpc.CallOption{CallRetryCodes(codes.Aborted)}, codes.Aborted, 3, codes.OK},
		{"per call: codes replace", []ClientOption{WithRetry(noDelay)}, []grpc.CallOption{CallRetryCodes(codes.Aborted)}, codes.Unavailable, 1, codes.Unavailable},
	} {
		svc := &service{fail: failFirst(2, tc.code, "")}
		client := serve(t, svc, nil, withClient(newClient(t, tc.opts...))...)
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{}, tc.call...)
		assert.Equal(t, tc.want, status.Code(err), "%s: %v", tc.name, err)
		assert.Equal(t, tc.attempts, svc.count(), tc.name)
	}
}

func TestUnaryGivesUp(t *testing.T) {
	svc := &service{fail: always(codes.Unavailable, "")}
	cfg := noDelay
	cfg.MaxAttempts = 4
	c := newClient(t, WithRetry(cfg))
	client := serve(t, svc, nil, withClient(c)...)
	_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 4, re.Attempts, "MaxAttempts includes the first")
	assert.Equal(t, 4, svc.count())
	want := retry.Metrics{Retries: 3, GaveUp: 1}
	want.GaveUpBy[retry.ReasonAttempts] = 1
	assert.Equal(t, want, c.Metrics())
}

func TestUnaryRequestReplayed(t *testing.T) {
	svc := &service{fail: failFirst(2, codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay)))...)
	body := []byte("account 7\x00\xff")
	resp, err := client.UnaryCall(t.Context(), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: body}})
	require.NoError(t, err)
	assert.Equal(t, body, resp.GetPayload().GetBody())
	assert.Equal(t, []string{string(body), string(body), string(body)}, svc.payloads)
}

// TestPushback checks over bufconn, in virtual time, that the server's
// pushback sets the next delay exactly, and that a malformed or negative
// one stops the retries.
func TestPushback(t *testing.T) {
	for _, tc := range []struct {
		pushback string
		gaps     []time.Duration
	}{
		{"2000", []time.Duration{2 * time.Second}},
		{"0", []time.Duration{0}},
		{"5", []time.Duration{5 * time.Millisecond}}, // below the backoff: exactly
		{"-1", nil},
		{"soon", nil},
		{"1.5", nil},
		{"+5", nil},
		{"99999999999", nil},
	} {
		synctest.Test(t, func(t *testing.T) {
			var starts []time.Time
			svc := &service{fail: func(n int) (string, error) {
				starts = append(starts, time.Now())
				if n == 1 {
					return tc.pushback, status.Error(codes.Unavailable, "busy")
				}
				return "", nil
			}}
			cfg := retry.Config{Delay: time.Second, Jitter: retry.NoJitter, Budget: retry.BudgetConfig{Disabled: true}}
			client := serve(t, svc, nil, withClient(newClient(t, WithRetry(cfg)))...)
			_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
			var gaps []time.Duration
			for i := 1; i < len(starts); i++ {
				gaps = append(gaps, starts[i].Sub(starts[i-1]))
			}
			assert.Equal(t, tc.gaps, gaps, "pushback %q", tc.pushback)
			if tc.gaps == nil {
				assert.Equal(t, codes.Unavailable, status.Code(err), "pushback %q: do not retry", tc.pushback)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// TestDeadlineNeverOverrun checks that no retry starts, or waits, past the
// call's deadline.
func TestDeadlineNeverOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts []time.Duration
		start := time.Now()
		svc := &service{fail: func(int) (string, error) {
			starts = append(starts, time.Since(start))
			return "400", status.Error(codes.Unavailable, "busy")
		}}
		cfg := noDelay
		cfg.MaxAttempts = 10
		client := serve(t, svc, nil, withClient(newClient(t, WithRetry(cfg)))...)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		_, err := client.EmptyCall(ctx, &testpb.Empty{})
		assert.ErrorIs(t, err, retry.ErrDeadline)
		assert.Equal(t, codes.Unavailable, status.Code(err))
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{0, 400 * ms, 800 * ms}, starts)
		assert.Equal(t, 800*ms, time.Since(start), "a retry at 1200ms would pass the deadline: none waits for it")
	})
}

func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{block: true}
		client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithAttemptTimeout(100*time.Millisecond)))...)
		start := time.Now()
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
		assert.Equal(t, 3, svc.count(), "an attempt that times out is retried")
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
	})
}

// TestServerStreamRetriedUntilCommit checks that a server-streaming call is
// retried while nothing has come back, its request replayed, and never
// once a response has come.
func TestServerStreamRetriedUntilCommit(t *testing.T) {
	req := &testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("req")}}
	recvAll := func(stream testpb.TestService_StreamingOutputCallClient) (int, error) {
		n := 0
		for {
			_, err := stream.Recv()
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			n++
		}
	}

	svc := &service{fail: failFirst(2, codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay)))...)
	stream, err := client.StreamingOutputCall(t.Context(), req)
	require.NoError(t, err)
	n, err := recvAll(stream)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "every response of the attempt that succeeded, none twice")
	assert.Equal(t, []string{"req", "req", "req"}, svc.payloads, "the request replayed")

	// Committed: one response came, then the failure: never replayed.
	svc = &service{fail: failFirst(2, codes.Unavailable, ""), sendFirst: true}
	client = serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay)))...)
	stream, err = client.StreamingOutputCall(t.Context(), req)
	require.NoError(t, err)
	n, err = recvAll(stream)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, svc.count(), "a committed stream is never replayed")
}

// TestServerStreamCommittedByHeader checks that a server-streaming call
// whose response header has arrived is committed, as gRFC A6 says, even if
// the caller never looks at the header: a server that sends its header and
// then fails is not called again, and the caller gets its error.
func TestServerStreamCommittedByHeader(t *testing.T) {
	req := &testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("req")}}
	for _, tc := range []struct {
		name   string
		header bool // the caller asks for the header before it receives
		md     metadata.MD
	}{
		{"Recv only", false, metadata.Pairs("x-attempt", "sent")},
		{"Header, then Recv", true, metadata.Pairs("x-attempt", "sent")},
		{"Recv only, empty header", false, nil},
	} {
		svc := &service{fail: always(codes.Unavailable, ""), sendHeader: true, header: tc.md}
		client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay)))...)
		stream, err := client.StreamingOutputCall(t.Context(), req)
		require.NoError(t, err, tc.name)
		if tc.header {
			md, err := stream.Header()
			require.NoError(t, err, tc.name)
			assert.Equal(t, tc.md.Get("x-attempt"), md.Get("x-attempt"), tc.name)
		}
		_, err = stream.Recv()
		assert.Equal(t, codes.Unavailable, status.Code(err), "%s: %v", tc.name, err)
		assert.Equal(t, 1, svc.count(), "%s: a stream whose header arrived is never replayed", tc.name)
		md, err := stream.Header()
		assert.NoError(t, err, tc.name)
		assert.NotNil(t, md, "%s: a header came", tc.name)
		assert.Equal(t, tc.md.Get("x-attempt"), md.Get("x-attempt"), "%s: the header is the committed attempt's", tc.name)
	}

	// A stream that fails before any header (trailers only) is still
	// retried.
	svc := &service{fail: always(codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay)))...)
	stream, err := client.StreamingOutputCall(t.Context(), req)
	require.NoError(t, err)
	_, err = stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Equal(t, 3, svc.count(), "no header, no commit: retried")
}

// TestServerStreamAttemptTimeout checks that an attempt of a
// server-streaming call that gets no response within the attempt timeout
// is retried, and that a committed stream outlives the timeout.
func TestServerStreamAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{blockFirst: true, pause: time.Second}
		client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithAttemptTimeout(100*time.Millisecond)))...)
		start := time.Now()
		stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("req")}})
		require.NoError(t, err)
		n := 0
		for {
			_, err := stream.Recv()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if n == 0 {
				assert.Equal(t, 100*time.Millisecond, time.Since(start), "the first attempt timed out; the second answered at once")
			}
			n++
		}
		assert.Equal(t, 3, n)
		assert.Equal(t, 2, svc.count())
		assert.Equal(t, 2100*time.Millisecond, time.Since(start), "once committed, the stream is not cut by the attempt timeout")
	})
}

// TestServerStreamHeaderThenTimeout checks that an attempt cut by its
// attempt timeout after its header arrived, unasked, is committed: not
// retried, and the call ends with DEADLINE_EXCEEDED.
func TestServerStreamHeaderThenTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{block: true, sendHeader: true}
		client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithAttemptTimeout(100*time.Millisecond)))...)
		start := time.Now()
		stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
		require.NoError(t, err)
		_, err = stream.Recv()
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		synctest.Wait()
		assert.Equal(t, 1, svc.count(), "committed by its header: not retried")
	})
}

// TestClientStreamNotReplayed checks that a client-streaming call is not
// retried once it has sent a message.
func TestClientStreamNotReplayed(t *testing.T) {
	svc := &service{fail: always(codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay)))...)
	stream, err := client.StreamingInputCall(t.Context())
	require.NoError(t, err)
	_ = stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("part")}})
	_, err = stream.CloseAndRecv()
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Equal(t, 1, svc.count())

	svc = &service{}
	client = serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay)))...)
	stream, err = client.StreamingInputCall(t.Context())
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("part")}}))
	}
	resp, err := stream.CloseAndRecv()
	require.NoError(t, err)
	assert.EqualValues(t, 12, resp.GetAggregatedPayloadSize())
}

// TestBreaker checks that a method's breaker opens, then fails calls fast,
// with a clear UNAVAILABLE, without reaching the server; and that another
// method has its own breaker.
func TestBreaker(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 2, OpenDuration: time.Minute}, 0)
	require.NoError(t, err)
	svc := &service{fail: always(codes.Internal, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithBreakers(g, BreakerPerMethod)))...)
	for range 2 {
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		assert.Equal(t, codes.Internal, status.Code(err))
	}
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Contains(t, status.Convert(err).Message(), "circuit breaker open for /grpc.testing.TestService/EmptyCall")
	assert.Equal(t, 2, svc.count(), "an open breaker keeps the call off the server")

	_, err = client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Internal, status.Code(err), "another method, another breaker")
	assert.Equal(t, 3, svc.count())

	// Streams go through the breaker too.
	_, err = client.StreamingInputCall(t.Context())
	require.NoError(t, err) // opening is local; the first response says
	g2, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Minute}, 0)
	require.NoError(t, err)
	svc = &service{fail: always(codes.Unavailable, "")}
	client = serve(t, svc, nil, withClient(newClient(t, WithBreakers(g2, BreakerPerTarget)))...)
	stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err))
	_, err = client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
	assert.ErrorIs(t, err, breaker.ErrOpen, "per target: one breaker for every method")
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Equal(t, 1, svc.count())
}

// TestBreakerMessageRoundedUp checks that the open breaker's message
// rounds its wait up to the millisecond, as a pushback trailer would.
func TestBreakerMessageRoundedUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: 4200*time.Millisecond + 400*time.Microsecond}, 0)
		require.NoError(t, err)
		svc := &service{fail: always(codes.Unavailable, "")}
		client := serve(t, svc, nil, withClient(newClient(t, WithBreakers(g, BreakerPerMethod)))...)
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{}) // trips the breaker
		require.Equal(t, codes.Unavailable, status.Code(err))
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
		require.ErrorIs(t, err, breaker.ErrOpen)
		assert.Equal(t, "grpcmw: circuit breaker open for /grpc.testing.TestService/EmptyCall; it lets a call through in 4.201s", status.Convert(err).Message())
	})
}

// TestAbandonedStreamFreesProbe checks that a stream dropped before its
// first response gives its breaker permit back: a half-open breaker is not
// left waiting for a probe that never reports.
func TestAbandonedStreamFreesProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Second}, 0)
		require.NoError(t, err)
		svc := &service{fail: failFirst(1, codes.Unavailable, "")}
		client := serve(t, svc, nil, withClient(newClient(t, WithBreakers(g, BreakerPerTarget)))...)
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{}) // trips the breaker
		require.Equal(t, codes.Unavailable, status.Code(err))
		bubble.Sleep(time.Second) // half-open: one probe at a time

		ctx, cancel := context.WithCancel(t.Context())
		_, err = client.StreamingInputCall(ctx) // the probe, abandoned
		require.NoError(t, err)
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
		require.ErrorIs(t, err, breaker.ErrOpen, "the probe holds the half-open slot")
		cancel()
		synctest.Wait()
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
		assert.NoError(t, err, "the abandoned probe gave its slot back")
	})
}

// TestNewClientErrors checks that every misuse of an option is an error
// from NewClient that names the option and the bad value, never a panic.
func TestNewClientErrors(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{}, 0)
	require.NoError(t, err)
	for _, tc := range []struct {
		opts   []ClientOption
		err    string
		prefix bool // the rest of the message is retry's
	}{
		{[]ClientOption{WithAttemptTimeout(-time.Second)}, "grpcmw: WithAttemptTimeout(-1s): negative", false},
		{[]ClientOption{WithRetryCodes(codes.Code(42))}, "grpcmw: WithRetryCodes: code 42 does not exist", false},
		{[]ClientOption{WithRetryCodes(codes.OK, codes.Code(17))}, "grpcmw: WithRetryCodes: code 17 does not exist", false},
		{[]ClientOption{WithRetry(retry.Config{MaxAttempts: -1})}, "grpcmw: WithRetry: retry: MaxAttempts -1", true},
		{[]ClientOption{WithRetry(retry.Config{AttemptTimeout: -1})}, "grpcmw: WithRetry: retry: AttemptTimeout -1ns is negative", false},
		{[]ClientOption{WithBreakers(nil, BreakerPerMethod)}, "grpcmw: WithBreakers with a nil breaker group", false},
		{[]ClientOption{WithBreakers(g, BreakerKey(2))}, "grpcmw: WithBreakers: BreakerKey 2 does not exist", false},
		{[]ClientOption{WithBreakers(g, BreakerKey(-1))}, "grpcmw: WithBreakers: BreakerKey -1 does not exist", false},
		{[]ClientOption{WithRetry(noDelay), nil}, "grpcmw: NewClient: opts[1] is nil", false},
		{[]ClientOption{WithThrottle(nil)}, "grpcmw: WithThrottle with a nil throttle", false},
	} {
		var c *Client
		var err error
		require.NotPanics(t, func() { c, err = NewClient(tc.opts...) }, tc.err)
		assert.Nil(t, c, tc.err)
		if !assert.Error(t, err, tc.err) {
			continue
		}
		if tc.prefix {
			assert.True(t, strings.HasPrefix(err.Error(), tc.err), "%q does not start with %q", err, tc.err)
		} else {
			assert.EqualError(t, err, tc.err)
		}
	}
}

// TestSharedBudget checks that a budget shared by clients bounds their
// retries: here gRPC's own throttling (tokens mode), which two failures
// exhaust.
func TestSharedBudget(t *testing.T) {
	budget, err := retry.NewBudget(retry.BudgetConfig{Mode: "tokens", MaxTokens: 4})
	require.NoError(t, err)
	cfg := noDelay
	cfg.Budget = retry.BudgetConfig{}
	cfg.SharedBudget = budget
	cfg.MaxAttempts = 5
	svc := &service{fail: always(codes.Unavailable, "")}
	a := serve(t, svc, nil, withClient(newClient(t, WithRetry(cfg)))...)
	b := serve(t, svc, nil, withClient(newClient(t, WithRetry(cfg)))...)
	_, err = a.EmptyCall(t.Context(), &testpb.Empty{})
	assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
	assert.Equal(t, 2, svc.count(), "4 tokens: the first failure leaves 3, the second 2, and retries stop at half")
	_, err = b.EmptyCall(t.Context(), &testpb.Empty{})
	assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
	assert.Equal(t, 3, svc.count(), "the other client draws on the same budget: no retry left")
}

// FuzzPushback checks that no pushback trailer makes the parser panic, and
// that it accepts exactly one non-negative integer of at most 9 digits.
func FuzzPushback(f *testing.F) {
	for _, s := range []string{"0", "250", "999999999", "1000000000", "-1", "+5", "1.5", "", " 1", "0x10", "١"} {
		f.Add(s, "")
	}
	f.Add("1", "2")
	f.Fuzz(func(t *testing.T, v, second string) {
		vs := []string{v}
		if second != "" {
			vs = append(vs, second)
		}
		d, ok := parsePushback(vs)
		if !ok {
			return
		}
		require.Len(t, vs, 1, "two values are ambiguous")
		assert.GreaterOrEqual(t, d, time.Duration(0))
		assert.Zero(t, d%time.Millisecond, "whole milliseconds")
		assert.LessOrEqual(t, len(v), 9)
		for i := 0; i < len(v); i++ {
			assert.True(t, v[i] >= '0' && v[i] <= '9', "%q accepted", v)
		}
	})
}

// TestSheddingIsNotFailure: a server that sheds load (RESOURCE_EXHAUSTED,
// UNAVAILABLE with pushback) is healthy: its answers do not open the
// breaker, and they feed the throttle as refusals. Other errors,
// UNAVAILABLE without pushback and timeouts open the breaker, and are
// accepts for the throttle. A real gRPC server, no retries, Unary and
// Stream alone; a stream's answer is that of its first Recv.
func TestSheddingIsNotFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		svc      func() *service
		overload bool
	}{
		{"RESOURCE_EXHAUSTED", func() *service { return &service{fail: always(codes.ResourceExhausted, "")} }, true},
		{"RESOURCE_EXHAUSTED with pushback", func() *service { return &service{fail: always(codes.ResourceExhausted, "10")} }, true},
		{"UNAVAILABLE with pushback", func() *service { return &service{fail: always(codes.Unavailable, "10")} }, true},
		{"UNAVAILABLE with pushback 0", func() *service { return &service{fail: always(codes.Unavailable, "0")} }, true},
		{"UNAVAILABLE with do-not-retry pushback", func() *service { return &service{fail: always(codes.Unavailable, "-1")} }, true},
		{"UNAVAILABLE without pushback", func() *service { return &service{fail: always(codes.Unavailable, "")} }, false},
		{"INTERNAL", func() *service { return &service{fail: always(codes.Internal, "")} }, false},
		{"INTERNAL with pushback", func() *service { return &service{fail: always(codes.Internal, "10")} }, false},
		{"timeout", func() *service { return &service{block: true} }, false},
	} {
		for _, stream := range []bool{false, true} {
			name, method := tc.name+"/unary", "/grpc.testing.TestService/EmptyCall"
			if stream {
				name, method = tc.name+"/stream", "/grpc.testing.TestService/StreamingOutputCall"
			}
			t.Run(name, func(t *testing.T) {
				if stream && tc.name == "timeout" {
					t.Skip("a stream has an attempt timeout only with retries")
				}
				// In a bubble: the timeout case's 20ms attempt timeout is then
				// exact, however loaded the machine.
				synctest.Test(t, func(t *testing.T) {
					svc := tc.svc()
					g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 3, OpenDuration: time.Minute}, 0)
					require.NoError(t, err)
					th, err := throttle.New(throttle.Config{Rand: func() float64 { return 1 }}) // counts, never rejects
					require.NoError(t, err)
					opts := []ClientOption{WithBreakers(g, BreakerPerMethod), WithThrottle(th)}
					if svc.block {
						opts = append(opts, WithAttemptTimeout(20*time.Millisecond))
					}
					client := serve(t, svc, nil, withClient(newClient(t, opts...))...)
					open := 0
					for range 5 {
						var err error
						if stream {
							var s testpb.TestService_StreamingOutputCallClient
							if s, err = client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{}); err == nil {
								_, err = s.Recv()
							}
						} else {
							_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
						}
						require.Error(t, err)
						assert.Equal(t, tc.overload, seawall.IsOverload(err), "the caller sees what the policies saw: %v", err)
						if errors.Is(err, breaker.ErrOpen) {
							open++
						}
					}
					b := g.Get(method)
					m := th.Metrics()
					if tc.overload {
						assert.Equal(t, breaker.Closed, b.State(), "shedding does not open the breaker")
						assert.Zero(t, open)
						assert.Equal(t, uint64(5), b.Metrics().Ignored)
						assert.Equal(t, throttle.Metrics{Probability: 5.0 / 6, Requests: 5, Refused: 5}, m, "every answer is a refusal")
						assert.Equal(t, 5, svc.count())
					} else {
						assert.Equal(t, breaker.Open, b.State(), "failures open the breaker")
						assert.Equal(t, 2, open)
						assert.Equal(t, uint64(3), b.Metrics().Failures)
						assert.Equal(t, throttle.Metrics{Requests: 3, Accepts: 3}, m,
							"failures are accepts; the breaker's rejections never reach the throttle")
						assert.Equal(t, 3, svc.count())
					}
				})
			})
		}
	}
}

// TestSheddingWithBreakerOnly: a client with a breaker and neither a
// throttle nor retries still reads the pushback: an UNAVAILABLE with
// pushback, as a RESOURCE_EXHAUSTED, is no breaker failure, for unary
// calls and streams alike; an UNAVAILABLE without pushback is one.
func TestSheddingWithBreakerOnly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     codes.Code
		pushback string
		failure  bool
	}{
		{"RESOURCE_EXHAUSTED", codes.ResourceExhausted, "", false},
		{"UNAVAILABLE with pushback", codes.Unavailable, "10", false},
		{"UNAVAILABLE without pushback", codes.Unavailable, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Minute}, 0)
			require.NoError(t, err)
			svc := &service{fail: always(tc.code, tc.pushback)}
			client := serve(t, svc, nil, withClient(newClient(t, WithBreakers(g, BreakerPerTarget)))...)
			_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
			assert.Equal(t, tc.code, status.Code(err))
			stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
			if tc.failure {
				assert.ErrorIs(t, err, breaker.ErrOpen, "the unary failure opened the breaker")
				assert.Equal(t, 1, svc.count())
				return
			}
			require.NoError(t, err)
			_, err = stream.Recv()
			assert.Equal(t, tc.code, status.Code(err))
			_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
			assert.Equal(t, tc.code, status.Code(err))
			assert.Equal(t, 3, svc.count(), "the breaker stayed closed")
			assert.Equal(t, breaker.Metrics{State: breaker.Closed, Calls: 3, Ignored: 3}, g.Get("passthrough:///bufnet").Metrics())
		})
	}
}

// TestNoPolicyNoAnswer: a call with no policy returns the server's error
// as it came, an overload included; with one, the overload the policies
// saw. Unary calls and streams alike.
func TestNoPolicyNoAnswer(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{}, 0)
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		opts     []ClientOption
		call     []grpc.CallOption
		overload bool
	}{
		{"no policy", nil, nil, false},
		{"retries off for the call", []ClientOption{WithRetry(noDelay)}, []grpc.CallOption{CallMaxAttempts(1)}, false},
		{"retries", []ClientOption{WithRetry(noDelay), WithRetryCodes()}, nil, true},
		{"breakers", []ClientOption{WithBreakers(g, BreakerPerMethod)}, nil, true},
	} {
		for _, code := range []codes.Code{codes.ResourceExhausted, codes.Unavailable} {
			svc := &service{fail: always(code, "10")}
			client := serve(t, svc, nil, withClient(newClient(t, tc.opts...))...)
			_, err := client.EmptyCall(t.Context(), &testpb.Empty{}, tc.call...)
			assert.Equal(t, code, status.Code(err))
			assert.Equal(t, tc.overload, seawall.IsOverload(err), "%s: unary %v", tc.name, code)
			stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{}, tc.call...)
			require.NoError(t, err)
			_, err = stream.Recv()
			assert.Equal(t, code, status.Code(err))
			assert.Equal(t, tc.overload, seawall.IsOverload(err), "%s: stream %v", tc.name, code)
		}
	}
}

// TestAnswer: the error the policies see for an attempt; seawall.IsOverload
// is true of exactly the overloads, and the status survives.
func TestAnswer(t *testing.T) {
	for _, tc := range []struct {
		code     codes.Code
		pushback string
		overload bool
		hint     time.Duration
	}{
		{codes.ResourceExhausted, "", true, 0},
		{codes.ResourceExhausted, "25", true, 25 * time.Millisecond},
		{codes.Unavailable, "25", true, 25 * time.Millisecond},
		{codes.Unavailable, "soon", true, 0},
		{codes.Unavailable, "", false, 0},
		{codes.Internal, "25", false, 0},
	} {
		var md metadata.MD
		if tc.pushback != "" {
			md = metadata.Pairs(PushbackKey, tc.pushback)
		}
		raw := status.Error(tc.code, "busy")
		err := answer(raw, md)
		assert.Equal(t, tc.overload, seawall.IsOverload(err), "%v %q", tc.code, tc.pushback)
		assert.Equal(t, tc.code, status.Code(err))
		assert.Equal(t, "busy", status.Convert(err).Message())
		if tc.overload {
			d, _ := seawall.RetryAfter(err)
			assert.Equal(t, tc.hint, d)
			assert.Equal(t, breaker.Ignore, breaker.DefaultClassify(err))
		} else {
			assert.Equal(t, raw, err, "unchanged")
		}
	}
	assert.NoError(t, answer(nil, nil))
}

// TestThrottleEveryAttempt: Unary and Stream alone ask the throttle for
// every attempt, after the breaker, and tell it and the breaker the
// outcome: a server's UNAVAILABLE with pushback is a refusal for the
// throttle and no failure for the breaker (which opens on one failure);
// the throttle then rejects the next attempt, a retry or a new call,
// before it is sent, and the breaker's permit is given back unused.
func TestThrottleEveryAttempt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retry   bool
		breaker bool
	}{
		{"no retries", false, true},
		{"throttle only", false, false},
		{"retries", true, true},
	} {
		for _, stream := range []bool{false, true} {
			name := tc.name + "/unary"
			if stream {
				name = tc.name + "/server-streaming"
			}
			t.Run(name, func(t *testing.T) {
				g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Minute}, 0)
				require.NoError(t, err)
				th, err := throttle.New(throttle.Config{Rand: func() float64 { return 0 }}) // rejects whenever it may
				require.NoError(t, err)
				opts := []ClientOption{WithThrottle(th)}
				if tc.breaker {
					opts = append(opts, WithBreakers(g, BreakerPerTarget))
				}
				if tc.retry {
					opts = append(opts, WithRetry(noDelay)) // UNAVAILABLE is retried
				}
				svc := &service{fail: always(codes.Unavailable, "0")} // pushback 0: retried at once
				client := serve(t, svc, nil, withClient(newClient(t, opts...))...)
				call := func() error {
					if !stream {
						_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
						return err
					}
					s, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
					if err != nil {
						return err
					}
					_, err = s.Recv()
					return err
				}

				err = call()
				if !tc.retry {
					// The server's refusal, as the policies saw it; then a
					// second call.
					assert.Equal(t, codes.Unavailable, status.Code(err))
					assert.True(t, seawall.IsOverload(err), "an UNAVAILABLE with pushback is an overload: %v", err)
					assert.NotErrorIs(t, err, throttle.ErrThrottled)
					err = call()
				}
				// The first attempt was refused, which makes the probability
				// 1/2: the next one is throttled.
				assert.Equal(t, codes.Unavailable, status.Code(err))
				assert.Contains(t, status.Convert(err).Message(), "throttled locally")
				require.ErrorIs(t, err, throttle.ErrThrottled)
				if tc.retry {
					var re *retry.Error
					require.ErrorAs(t, err, &re)
					assert.Equal(t, 2, re.Attempts, "the throttled retry is not retried")
				}
				assert.Equal(t, 1, svc.count(), "the throttled attempt was not sent")
				assert.Equal(t, throttle.Metrics{Probability: 2.0 / 3, Requests: 2, Throttled: 1, Refused: 1}, th.Metrics())
				if tc.breaker {
					assert.Equal(t, breaker.Metrics{State: breaker.Closed, Calls: 2, Ignored: 2}, g.Get("passthrough:///bufnet").Metrics(),
						"the refusal is no failure, and the throttled attempt gave its permit back")
				}
			})
		}
	}
}

// TestStreamThrottleOutcome: a stream's outcome reaches the throttle as
// the breaker's does: a stream that answers is an accept, and one
// abandoned before its first response is forgotten, as if not made.
func TestStreamThrottleOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th, err := throttle.New(throttle.Config{})
		require.NoError(t, err)
		client := serve(t, &service{}, nil, withClient(newClient(t, WithThrottle(th)))...)
		stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
		require.NoError(t, err)
		_, err = stream.Recv()
		require.NoError(t, err)
		assert.Equal(t, throttle.Metrics{Requests: 1, Accepts: 1}, th.Metrics(), "the first response: an accept")

		ctx, cancel := context.WithCancel(t.Context())
		_, err = client.StreamingInputCall(ctx) // abandoned before any response
		require.NoError(t, err)
		cancel()
		synctest.Wait()
		assert.Equal(t, throttle.Metrics{Requests: 1, Accepts: 1, Forgotten: 1}, th.Metrics())
	})
}

// TestThrottledAttempt: a throttled attempt is not sent, not retried, and
// gives its breaker permit back unused.
func TestThrottledAttempt(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{}, 0)
	require.NoError(t, err)
	th, err := throttle.New(throttle.Config{Rand: func() float64 { return 0 }}) // rejects whenever it may
	require.NoError(t, err)
	svc := &service{fail: always(codes.ResourceExhausted, "")}
	c := newClient(t, WithRetry(noDelay), WithRetryCodes(codes.ResourceExhausted), WithBreakers(g, BreakerPerMethod), WithThrottle(th))
	client := serve(t, svc, nil, withClient(c)...)
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	// The first attempt is refused, which makes the probability 1/2; its
	// retry is throttled, and not retried.
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "throttled locally")
	require.ErrorIs(t, err, throttle.ErrThrottled)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 2, re.Attempts)
	assert.Equal(t, 1, svc.count(), "the throttled attempt was not sent")
	assert.Equal(t, throttle.Metrics{Probability: 2.0 / 3, Requests: 2, Throttled: 1, Refused: 1}, th.Metrics())
	bm := g.Get("/grpc.testing.TestService/EmptyCall").Metrics()
	assert.Equal(t, uint64(2), bm.Ignored, "the refusal and the unused permit")
	assert.Zero(t, bm.Failures)
}

// TestOverloadKeepsPushback: an overload (the error the retry sees for a
// RESOURCE_EXHAUSTED or an UNAVAILABLE with pushback) still makes the
// retry wait the pushback exactly, and a do-not-retry pushback still ends
// the retries.
func TestOverloadKeepsPushback(t *testing.T) {
	for _, tc := range []struct {
		code     codes.Code
		pushback string
		gaps     []time.Duration
	}{
		{codes.Unavailable, "5", []time.Duration{5 * time.Millisecond}},
		{codes.ResourceExhausted, "2000", []time.Duration{2 * time.Second}},
		{codes.Unavailable, "-1", nil},
	} {
		synctest.Test(t, func(t *testing.T) {
			var starts []time.Time
			svc := &service{fail: func(n int) (string, error) {
				starts = append(starts, time.Now())
				if n == 1 {
					return tc.pushback, status.Error(tc.code, "busy")
				}
				return "", nil
			}}
			cfg := retry.Config{Delay: time.Second, Jitter: retry.NoJitter, Budget: retry.BudgetConfig{Disabled: true}}
			c := newClient(t, WithRetry(cfg), WithRetryCodes(codes.Unavailable, codes.ResourceExhausted))
			client := serve(t, svc, nil, withClient(c)...)
			_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
			var gaps []time.Duration
			for i := 1; i < len(starts); i++ {
				gaps = append(gaps, starts[i].Sub(starts[i-1]))
			}
			assert.Equal(t, tc.gaps, gaps, "%v pushback %q", tc.code, tc.pushback)
			if tc.gaps == nil {
				assert.Equal(t, tc.code, status.Code(err))
			} else {
				assert.NoError(t, err)
			}
		})
	}
}
