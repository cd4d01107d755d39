package main

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall/breaker"
)

// runIn runs s in a synctest bubble (fake time, in-memory network: the
// same faults and the same timing every run) and returns its phases and
// how long it took in the bubble's time.
func runIn(t *testing.T, s scenario) ([numPhases]phase, time.Duration) {
	t.Helper()
	var (
		res     [numPhases]phase
		elapsed time.Duration
	)
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var err error
		res, err = s.run(t.Context())
		require.NoError(t, err)
		elapsed = time.Since(start)
	})
	return res, elapsed
}

// TestGameDay checks what the game day claims: with faults on, the retry
// budget keeps the attempts per request under 1.2 and the breaker stays
// closed; in the outage the breaker trips and shields the dependency; once
// the faults are off, the caller recovers.
func TestGameDay(t *testing.T) {
	defer goleak.VerifyNone(t)
	res, elapsed := runIn(t, defaultScenario())
	off, on, down, after := res[0], res[1], res[2], res[3]
	assert.Less(t, elapsed, 10*time.Second, "the run finishes in a few seconds")

	assert.Equal(t, phase{Requests: 100, Successes: 100, Attempts: 100, End: breaker.Closed}, off, "faults off: nothing happens")

	assert.Equal(t, 300, on.Requests)
	assert.NotZero(t, on.Injected.Errors)
	assert.NotZero(t, on.Injected.Delays)
	assert.Equal(t, uint64(300)+on.Retries, on.Injected.Calls, "every attempt met the injector")
	assert.LessOrEqual(t, on.attemptsPerRequest(), 1.2, "the budget holds retries down")
	assert.Greater(t, on.Retries, uint64(0), "failures are retried")
	assert.GreaterOrEqual(t, on.successRate(), 0.7, "retries win back some of the 30% injected")
	assert.Zero(t, on.Trips, "a partial degradation does not trip the breaker")
	assert.Equal(t, breaker.Closed, on.End)

	assert.Zero(t, down.Successes)
	assert.GreaterOrEqual(t, down.Trips, uint64(1), "the outage trips the breaker")
	assert.Less(t, down.attemptsPerRequest(), 0.5, "the open breaker shields the dependency")
	assert.Greater(t, down.FailedFast, 50)

	assert.Zero(t, after.Injected.Calls, "no fault once disabled")
	assert.Equal(t, breaker.Closed, after.End, "the breaker closes again")
	assert.Equal(t, after.Requests, after.Successes+after.FailedFast, "every request the breaker let through succeeded")

	var out bytes.Buffer
	defaultScenario().print(&out, res)
	t.Log("\n" + out.String())

	again, _ := runIn(t, defaultScenario())
	assert.Equal(t, res, again, "a seeded game day in fake time is reproducible")
}

// TestGameDayReal runs a short game day with the real clock and prints it,
// as go run does.
func TestGameDayReal(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := defaultScenario()
	s.Requests = [numPhases]int{10, 30, 10, 10}
	s.Interval = time.Millisecond
	res, err := s.run(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 10, res[0].Successes)
	assert.LessOrEqual(t, res[1].attemptsPerRequest(), 1.5)
	var out bytes.Buffer
	s.print(&out, res)
	assert.Contains(t, out.String(), "faults off again")
	t.Log("\n" + out.String())
}
