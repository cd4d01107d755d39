package httpmw

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// take returns the attempts heard so far, their errors checked by errIs
// (one per attempt, nil: no error) and cleared, so that the rest compares
// with ==; and how many times Observing was asked.
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

// errSome, given to take, accepts any error: for attempts whose error is
// not worth naming.
var errSome = errors.New("some error")

func TestObserverFirstTry(t *testing.T) {
	s := newAttemptServer(t, 0, 0)
	rec := &recorder{}
	resp, err := s.client(t, WithRetry(noDelay), WithAttemptObserver(rec)).Get(s.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	got, asked := rec.take(t, nil)
	assert.Equal(t, 1, asked, "asked once per call")
	assert.Equal(t, []seawall.Attempt{{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeSuccess, Last: true, StatusCode: 200}}, got)
}

// TestObserverRetryAfter: a 503 with a hint is shed, and the retry's
// delay is the hint's.
func TestObserverRetryAfter(t *testing.T) {
	s := newAttemptServer(t, 1, 503)
	s.header.Set(RetryAfterMsHeader, "3")
	rec := &recorder{}
	resp, err := s.client(t, WithRetry(noDelay), WithAttemptObserver(rec)).Get(s.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	got, asked := rec.take(t, seawall.ErrRejected, nil)
	assert.Equal(t, 1, asked)
	ms := time.Millisecond
	assert.Equal(t, []seawall.Attempt{
		{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeShed, StatusCode: 503, RetryAfter: 3 * ms},
		{Protocol: seawall.ProtocolHTTP, Number: 2, Delay: 3 * ms, DelayReason: seawall.DelayRetryAfter, Outcome: seawall.OutcomeSuccess, Last: true, StatusCode: 200},
	}, got)
}

// TestObserverDelayReasons checks, in virtual time, what decided each
// delay: the backoff, or a Retry-After that raised it.
func TestObserverDelayReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(func(n int, r *http.Request) (*http.Response, error) {
			switch n {
			case 1:
				return answer(502), nil
			case 2:
				return answer(503, "Retry-After", "2"), nil
			}
			return answer(200), nil
		})
		rec := &recorder{}
		cfg := retry.Config{Delay: time.Second, Jitter: retry.NoJitter, Multiplier: 1, Budget: retry.BudgetConfig{Disabled: true}}
		tr := newTransport(t, f, WithRetry(cfg), WithAttemptObserver(rec))
		resp, err := get(t, context.Background(), tr)
		require.NoError(t, err)
		resp.Body.Close()
		got, _ := rec.take(t, errSome, seawall.ErrRejected, nil)
		assert.Equal(t, []seawall.Attempt{
			{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeFailure, StatusCode: 502},
			{Protocol: seawall.ProtocolHTTP, Number: 2, Delay: time.Second, DelayReason: seawall.DelayBackoff, Outcome: seawall.OutcomeShed, StatusCode: 503, RetryAfter: 2 * time.Second},
			{Protocol: seawall.ProtocolHTTP, Number: 3, Delay: 2 * time.Second, DelayReason: seawall.DelayRetryAfter, Outcome: seawall.OutcomeSuccess, Last: true, StatusCode: 200},
		}, got)
		assert.Equal(t, []time.Duration{0, time.Second, 3 * time.Second}, f.at)
	})
}

// TestObserverBreakerOpen: a call refused by an open breaker is one
// rejected attempt, with the breaker's hint.
func TestObserverBreakerOpen(t *testing.T) {
	g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Minute}, 0)
	require.NoError(t, err)
	s := newAttemptServer(t, 100, 500)
	rec := &recorder{}
	client := s.client(t, WithRetry(noDelay), WithBreakers(g, nil), WithAttemptObserver(rec))
	resp, err := client.Get(s.URL)
	require.NoError(t, err)
	resp.Body.Close()
	got, _ := rec.take(t, errSome)
	assert.Equal(t, []seawall.Attempt{{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeFailure, Last: true, StatusCode: 500}}, got,
		"a 500 is not retried, and is a failure")

	_, err = client.Get(s.URL)
	require.ErrorIs(t, err, breaker.ErrOpen)
	got, _ = rec.take(t, breaker.ErrOpen)
	require.Len(t, got, 1)
	hint := got[0].RetryAfter
	assert.True(t, hint > 0 && hint <= time.Minute, "the breaker's hint: %v", hint)
	got[0].RetryAfter = 0
	assert.Equal(t, seawall.Attempt{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeRejected, RejectedBy: "breaker", Last: true}, got[0])
}

// TestObserverThrottled: the throttle refuses the retry of a shed attempt.
func TestObserverThrottled(t *testing.T) {
	s := newAttemptServer(t, 100, 429)
	th, err := throttle.New(throttle.Config{Rand: func() float64 { return 0 }}) // rejects whenever it may
	require.NoError(t, err)
	rec := &recorder{}
	_, err = s.client(t, WithRetry(noDelay), WithThrottle(th), WithAttemptObserver(rec)).Get(s.URL)
	require.ErrorIs(t, err, throttle.ErrThrottled)
	got, _ := rec.take(t, seawall.ErrRejected, throttle.ErrThrottled)
	assert.Equal(t, []seawall.Attempt{
		{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeShed, StatusCode: 429},
		{Protocol: seawall.ProtocolHTTP, Number: 2, DelayReason: seawall.DelayBackoff, Outcome: seawall.OutcomeRejected, RejectedBy: "throttle", Last: true},
	}, got)
}

// TestObserverBudget: a retry the budget refuses is reported as a
// rejected attempt after the last one sent.
func TestObserverBudget(t *testing.T) {
	cfg := noDelay
	cfg.Budget = retry.BudgetConfig{Ratio: 0.1, NoFloor: true}
	s := newAttemptServer(t, 5, 503)
	rec := &recorder{}
	resp, err := s.client(t, WithRetry(cfg), WithAttemptObserver(rec)).Get(s.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode)
	got, _ := rec.take(t, errSome, retry.ErrBudgetExhausted)
	assert.Equal(t, []seawall.Attempt{
		{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeFailure, StatusCode: 503},
		{Protocol: seawall.ProtocolHTTP, Number: 2, Outcome: seawall.OutcomeRejected, RejectedBy: "retry_budget", Last: true},
	}, got)
}

// TestObserverSentOnce: a request that is not retried is one attempt.
func TestObserverSentOnce(t *testing.T) {
	s := newAttemptServer(t, 1, 503)
	rec := &recorder{}
	resp, err := s.client(t, WithRetry(noDelay), WithAttemptObserver(rec)).Post(s.URL, "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	got, _ := rec.take(t, errSome)
	assert.Equal(t, []seawall.Attempt{{Protocol: seawall.ProtocolHTTP, Number: 1, Outcome: seawall.OutcomeFailure, Last: true, StatusCode: 503}}, got)
}

// TestObserverNotObserving: a call the observer does not observe is
// asked about once, and reported never.
func TestObserverNotObserving(t *testing.T) {
	s := newAttemptServer(t, 1, 503)
	rec := &recorder{off: true}
	resp, err := s.client(t, WithRetry(noDelay), WithAttemptObserver(rec)).Get(s.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.Equal(t, 2, s.attempts())
	got, asked := rec.take(t)
	assert.Empty(t, got)
	assert.Equal(t, 1, asked)
}

func TestWithAttemptObserverNil(t *testing.T) {
	_, err := NewTransport(nil, WithAttemptObserver(nil))
	assert.EqualError(t, err, "httpmw: WithAttemptObserver: nil observer")
}
