package main

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall/breaker"
)

// runDefault runs the default scenario in a synctest bubble and returns its
// result and how long it took in the bubble's fake time.
func runDefault(t *testing.T) (*result, time.Duration) {
	t.Helper()
	var (
		res     *result
		elapsed time.Duration
	)
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var err error
		res, err = defaultScenario().run(t.Context(), nil)
		require.NoError(t, err)
		elapsed = time.Since(start)
	})
	return res, elapsed
}

// TestScenario checks the claims the demo makes, on the default scenario.
func TestScenario(t *testing.T) {
	s := defaultScenario()
	res, elapsed := runDefault(t)
	require.NotNil(t, res)
	recovery, end := s.Healthy+s.Outage, s.Healthy+s.Outage+s.Recovered
	assert.Less(t, elapsed, end+s.FastLatency*2, "the run ends when the last request of the recovered phase returns")

	d, p := res.Direct.Phases, res.Protected.Phases
	for ph := range numPhases {
		assert.Equal(t, d[ph].Requests, p[ph].Requests, "%s: both variants send the same requests", phaseNames[ph])
		assert.NotZero(t, d[ph].Requests, phaseNames[ph])
		assert.Zero(t, d[ph].Other+p[ph].Other, "%s: every outcome is a success, a service error or ErrOpen", phaseNames[ph])
		assert.Zero(t, d[ph].FailedFast, "%s: nothing fails fast without a breaker", phaseNames[ph])
		assert.Equal(t, d[ph].Requests, d[ph].ToService, "%s: without a breaker every request reaches the service", phaseNames[ph])
	}

	// Healthy: the breaker changes nothing.
	assert.Equal(t, d[healthy], p[healthy], "healthy: both variants see the same thing")
	assert.Zero(t, d[healthy].Errors)

	// Outage: without the breaker every call fails after the slow latency;
	// with it, most calls fail fast and few reach the service.
	assert.Equal(t, d[outage].Requests, d[outage].Errors, "outage: every call fails without a breaker")
	assert.GreaterOrEqual(t, d[outage].Mean(), s.SlowLatency*9/10)
	assert.Less(t, float64(p[outage].ToService), 0.3*float64(d[outage].ToService),
		"outage: the breaker lets fewer than 30%% of the calls reach the service")
	assert.Equal(t, p[outage].Requests, p[outage].ToService+p[outage].FailedFast)
	assert.Greater(t, p[outage].FailedFast, p[outage].Requests/2, "outage: most calls fail fast")
	assert.Less(t, 4*p[outage].ErrorWait, d[outage].ErrorWait,
		"outage: callers wait on errors far longer without a breaker")
	assert.Less(t, 4*p[outage].Mean(), d[outage].Mean())

	// Failing fast costs the caller no time, and is a rejection carrying the
	// open breaker's retry-after hint.
	var failedFast int
	for ph := range numPhases {
		assert.Zero(t, p[ph].FastWait, "%s: a call failed fast takes no time", phaseNames[ph])
		failedFast += p[ph].FailedFast
	}
	assert.Equal(t, failedFast, res.Protected.Rejected, "every rejection matches breaker.ErrOpen and seawall.ErrRejected")
	assert.Zero(t, res.Direct.Rejected)
	assert.Positive(t, res.Protected.RetryHinted, "rejections of the open breaker carry a retry-after hint")
	assert.Positive(t, res.Protected.MaxHint)
	assert.LessOrEqual(t, res.Protected.MaxHint, s.Breaker.OpenDuration)

	// Recovered: no errors; the breaker closes again within the phase.
	assert.Zero(t, d[recovered].Errors+p[recovered].Errors)
	assert.Equal(t, d[recovered].Requests, d[recovered].ToService)

	// The breaker goes closed → open → half-open → … → closed.
	tr := res.Protected.Transitions
	require.GreaterOrEqual(t, len(tr), 3, "transitions: %v", tr)
	assert.Equal(t, transition{At: tr[0].At, From: breaker.Closed, To: breaker.Open}, tr[0])
	assert.GreaterOrEqual(t, tr[0].At, s.Healthy+s.SlowLatency*9/10, "it opens once the first failures come back")
	assert.Less(t, tr[0].At, s.Healthy+s.SlowLatency*3/2, "it opens early in the outage")
	for i := 1; i < len(tr); i++ {
		assert.Equal(t, tr[i-1].To, tr[i].From, "transition %d follows %d: %v", i, i-1, tr)
		assert.GreaterOrEqual(t, tr[i].At, tr[i-1].At)
		switch tr[i].From {
		case breaker.Open:
			assert.Equal(t, breaker.HalfOpen, tr[i].To)
			assert.GreaterOrEqual(t, tr[i].At-tr[i-1].At, s.Breaker.OpenDuration, "it stays open OpenDuration")
		case breaker.HalfOpen:
			assert.Contains(t, []breaker.State{breaker.Open, breaker.Closed}, tr[i].To)
		default:
			t.Errorf("transition %d from %v: %v", i, tr[i].From, tr)
		}
	}
	last := tr[len(tr)-1]
	assert.Equal(t, breaker.Closed, last.To, "it ends closed")
	assert.GreaterOrEqual(t, last.At, recovery, "it closes in the recovered phase")
	assert.Less(t, last.At, end)
	for _, x := range tr[:len(tr)-1] {
		assert.NotEqual(t, breaker.Closed, x.To, "it closes only after the recovery: %v", tr)
	}

	m := res.Protected.Metrics
	assert.Equal(t, breaker.Closed, m.State)
	assert.Equal(t, uint64(len(tr)), m.Transitions)
	assert.Equal(t, uint64(failedFast), m.Rejections)
	var toService int
	for ph := range numPhases {
		toService += p[ph].ToService
	}
	assert.Equal(t, uint64(toService), m.Calls)

	// The live log announces the phases and every transition, in time order.
	assert.Len(t, res.Events, numPhases+len(tr)+1, "phases, transitions, first fast failure")
	for i := 1; i < len(res.Events); i++ {
		assert.LessOrEqual(t, res.Events[i-1].At, res.Events[i].At)
	}

	// The conclusion reports the measured numbers.
	c := conclusion(s, res)
	assert.Contains(t, c, fmt.Sprintf("spared the account service %d of %d calls", p[outage].FailedFast, p[outage].Requests))
	assert.Contains(t, c, fmt.Sprintf("closed %.2fs after the recovery", (last.At-recovery).Seconds()))

	goleak.VerifyNone(t)
}

// TestScenarioDeterministic checks that a seed gives one outcome in fake time.
func TestScenarioDeterministic(t *testing.T) {
	a, _ := runDefault(t)
	b, _ := runDefault(t)
	assert.Equal(t, a, b)
	goleak.VerifyNone(t)
}

// TestScenarioCancel checks that a cancelled run returns promptly, with the
// context's error, after joining every goroutine it started.
func TestScenarioCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		res, err := defaultScenario().run(ctx, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start), "in-flight calls end with the context")
		require.NotNil(t, res)
		assert.Positive(t, res.Direct.Phases[outage].Other, "calls cut short by the context")
	})
	goleak.VerifyNone(t)
}

// TestRunRejectsBadScenario checks the validation of flags.
func TestRunRejectsBadScenario(t *testing.T) {
	for _, mod := range []func(*scenario){
		func(s *scenario) { s.Rate = 0 },
		func(s *scenario) { s.Callers = 0 },
		func(s *scenario) { s.Outage = -time.Second },
		func(s *scenario) { s.Rate = 2_000_000 },
		func(s *scenario) { s.Breaker.FailureRate = 2 },
	} {
		s := defaultScenario()
		mod(&s)
		_, err := s.run(t.Context(), nil)
		assert.Error(t, err)
	}
}
