package grpcmw

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// recorder is an AttemptObserver that keeps what it hears.
type recorder struct {
	off      bool // Observing reports false
	mu       sync.Mutex
	asked    int
	attempts []seawall.Attempt
}

func (r *recorder) Observing(context.Context) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return !r.off
}

func (r *recorder) Attempt(_ context.Context, a seawall.Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, a)
}

// errSome, given to take, accepts any error.
var errSome = errors.New("some error")

// take returns the attempts heard so far, their errors checked against
// errIs (one per attempt: nil for none, errSome for any, else errors.Is)
// and cleared, so that the rest compares with ==; and how many times
// Observing was asked.
func (r *recorder) take(t *testing.T, errIs ...error) ([]seawall.Attempt, int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	got, asked := r.attempts, r.asked
	r.attempts, r.asked = nil, 0
	require.Len(t, errIs, len(got), "attempts: %+v", got)
	for i := range got {
		switch errIs[i] {
		case nil:
			assert.NoError(t, got[i].Err, "attempt %d", i+1)
		case errSome:
			assert.Error(t, got[i].Err, "attempt %d", i+1)
		default:
			assert.ErrorIs(t, got[i].Err, errIs[i], "attempt %d", i+1)
		}
		got[i].Err = nil
	}
	return got, asked
}

const (
	ok          = int(codes.OK)
	unavailable = int(codes.Unavailable)
)

func TestObserverUnary(t *testing.T) {
	rec := &recorder{}
	svc := &service{fail: failFirst(1, codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithAttemptObserver(rec)))...)
	_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
	require.NoError(t, err)
	got, asked := rec.take(t, errSome, nil)
	assert.Equal(t, 1, asked, "asked once per call")
	assert.Equal(t, []seawall.Attempt{
		{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeFailure, StatusCode: unavailable},
		{Protocol: seawall.ProtocolGRPC, Number: 2, DelayReason: seawall.DelayBackoff, Outcome: seawall.OutcomeSuccess, Last: true},
	}, got)

	// No retries, no policy: one attempt all the same.
	svc = &service{}
	client = serve(t, svc, nil, withClient(newClient(t, WithAttemptObserver(rec)))...)
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	require.NoError(t, err)
	got, _ = rec.take(t, nil)
	assert.Equal(t, []seawall.Attempt{{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeSuccess, Last: true}}, got)
}

// TestObserverPushback checks, in virtual time, that a pushback is shed,
// its wait reported as DelayPushback.
func TestObserverPushback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		svc := &service{fail: failFirst(1, codes.Unavailable, "2000")}
		cfg := retry.Config{Delay: time.Second, Jitter: retry.NoJitter, Budget: retry.BudgetConfig{Disabled: true}}
		client := serve(t, svc, nil, withClient(newClient(t, WithRetry(cfg), WithAttemptObserver(rec)))...)
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		require.NoError(t, err)
		got, _ := rec.take(t, seawall.ErrRejected, nil)
		assert.Equal(t, []seawall.Attempt{
			{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeShed, StatusCode: unavailable, RetryAfter: 2 * time.Second},
			{Protocol: seawall.ProtocolGRPC, Number: 2, Delay: 2 * time.Second, DelayReason: seawall.DelayPushback, Outcome: seawall.OutcomeSuccess, Last: true},
		}, got)
	})
}

func TestObserverBreakerOpen(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Minute}, 0)
	require.NoError(t, err)
	rec := &recorder{}
	svc := &service{fail: always(codes.Internal, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithBreakers(g, BreakerPerTarget), WithAttemptObserver(rec)))...)
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	require.Error(t, err)
	got, _ := rec.take(t, errSome)
	assert.Equal(t, []seawall.Attempt{{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeFailure, Last: true, StatusCode: int(codes.Internal)}}, got)

	for _, call := range []func() error{
		func() error { _, err := client.EmptyCall(t.Context(), &testpb.Empty{}); return err },
		func() error {
			_, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
			return err
		},
	} {
		require.ErrorIs(t, call(), breaker.ErrOpen)
		got, _ = rec.take(t, breaker.ErrOpen)
		require.Len(t, got, 1)
		hint := got[0].RetryAfter
		assert.True(t, hint > 0 && hint <= time.Minute, "the breaker's hint: %v", hint)
		got[0].RetryAfter = 0
		assert.Equal(t, seawall.Attempt{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeRejected, RejectedBy: "breaker", Last: true, StatusCode: unavailable}, got[0])
	}
	assert.Equal(t, 1, svc.count())
}

func TestObserverThrottled(t *testing.T) {
	th, err := throttle.New(throttle.Config{Rand: func() float64 { return 0 }}) // rejects whenever it may
	require.NoError(t, err)
	rec := &recorder{}
	svc := &service{fail: always(codes.ResourceExhausted, "")}
	c := newClient(t, WithRetry(noDelay), WithRetryCodes(codes.ResourceExhausted), WithThrottle(th), WithAttemptObserver(rec))
	client := serve(t, svc, nil, withClient(c)...)
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
	require.ErrorIs(t, err, throttle.ErrThrottled)
	got, _ := rec.take(t, seawall.ErrRejected, throttle.ErrThrottled)
	assert.Equal(t, []seawall.Attempt{
		{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeShed, StatusCode: int(codes.ResourceExhausted)},
		{Protocol: seawall.ProtocolGRPC, Number: 2, DelayReason: seawall.DelayBackoff, Outcome: seawall.OutcomeRejected, RejectedBy: "throttle", Last: true, StatusCode: unavailable},
	}, got)
}

func TestObserverBudget(t *testing.T) {
	cfg := noDelay
	cfg.Budget = retry.BudgetConfig{Ratio: 0.1, NoFloor: true}
	rec := &recorder{}
	svc := &service{fail: always(codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(cfg), WithAttemptObserver(rec)))...)
	_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
	require.ErrorIs(t, err, retry.ErrBudgetExhausted)
	got, _ := rec.take(t, errSome, retry.ErrBudgetExhausted)
	assert.Equal(t, []seawall.Attempt{
		{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeFailure, StatusCode: unavailable},
		{Protocol: seawall.ProtocolGRPC, Number: 2, Outcome: seawall.OutcomeRejected, RejectedBy: "retry_budget", Last: true},
	}, got)
}

// TestObserverServerStream: the attempts of a server-streaming call are
// its establishments, up to the one that commits.
func TestObserverServerStream(t *testing.T) {
	rec := &recorder{}
	svc := &service{fail: failFirst(2, codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithAttemptObserver(rec)))...)
	stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	n := 0
	for {
		_, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 3, n)
	got, asked := rec.take(t, errSome, errSome, nil)
	assert.Equal(t, 1, asked)
	assert.Equal(t, []seawall.Attempt{
		{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeFailure, StatusCode: unavailable},
		{Protocol: seawall.ProtocolGRPC, Number: 2, DelayReason: seawall.DelayBackoff, Outcome: seawall.OutcomeFailure, StatusCode: unavailable},
		{Protocol: seawall.ProtocolGRPC, Number: 3, DelayReason: seawall.DelayBackoff, Outcome: seawall.OutcomeSuccess, Last: true, StatusCode: ok},
	}, got, "the commit ends the last attempt; what follows is the stream's, not an attempt's")
}

// TestObserverNotObserving: a call the observer does not observe is
// asked about once, and reported never.
func TestObserverNotObserving(t *testing.T) {
	rec := &recorder{off: true}
	svc := &service{fail: failFirst(1, codes.Unavailable, "")}
	client := serve(t, svc, nil, withClient(newClient(t, WithRetry(noDelay), WithAttemptObserver(rec)))...)
	_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
	require.NoError(t, err)
	assert.Equal(t, 2, svc.count())
	got, asked := rec.take(t)
	assert.Empty(t, got)
	assert.Equal(t, 1, asked)
}

func TestWithAttemptObserverNil(t *testing.T) {
	_, err := NewClient(WithAttemptObserver(nil))
	assert.EqualError(t, err, "grpcmw: WithAttemptObserver with a nil observer")
}
