package breaker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func mustNew(t *testing.T, cfg Config) *Breaker {
	t.Helper()
	b, err := New(cfg)
	require.NoError(t, err)
	return b
}

// run records n calls that return err and reports how many were admitted.
func run(t *testing.T, b *Breaker, n int, err error) (admitted int) {
	t.Helper()
	for range n {
		p, aerr := b.Allow()
		if aerr != nil {
			require.ErrorIs(t, aerr, ErrOpen)
			continue
		}
		admitted++
		p.Done(err)
	}
	return admitted
}

// slowCall records one call that takes d and returns err.
func slowCall(t *testing.T, b *Breaker, d time.Duration, err error) {
	t.Helper()
	p, aerr := b.Allow()
	require.NoError(t, aerr)
	bubble.Sleep(d)
	p.Done(err)
}

// recorder collects OnStateChange calls.
type recorder struct {
	mu     sync.Mutex
	events []StateChange
}

func (r *recorder) hook(c StateChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, c)
}

// transitions returns the recorded transitions as "from>to".
func (r *recorder) transitions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var got []string
	for _, c := range r.events {
		got = append(got, c.From.String()+">"+c.To.String())
	}
	return got
}

// last returns the last recorded state change.
func (r *recorder) last(t *testing.T) StateChange {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.events, "no state change reported")
	return r.events[len(r.events)-1]
}

func TestZeroConfigTripsAfterFiveConsecutiveFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{})
		run(t, b, 4, errBoom)
		assert.Equal(t, Closed, b.State())
		run(t, b, 1, errBoom)
		assert.Equal(t, Open, b.State())
		bubble.Sleep(5*time.Second - time.Nanosecond)
		assert.Zero(t, run(t, b, 1, nil), "open for 5s by default")
		bubble.Sleep(time.Nanosecond)
		assert.Equal(t, 1, run(t, b, 1, nil), "one probe after 5s")
		assert.Equal(t, Closed, b.State())
	})
}

func TestConsecutiveFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 3})
		run(t, b, 2, errBoom)
		run(t, b, 1, nil) // a success resets the run
		run(t, b, 2, errBoom)
		run(t, b, 1, context.Canceled) // ignored: does not reset
		assert.Equal(t, Closed, b.State())
		run(t, b, 1, errBoom)
		assert.Equal(t, Open, b.State())
	})
}

func TestCountWindowFailureRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{FailureRate: 0.5, CountWindow: 10, MinimumCalls: 4})

		run(t, b, 3, errBoom)
		assert.Equal(t, Closed, b.State(), "3 calls are below MinimumCalls")
		run(t, b, 1, nil)
		assert.Equal(t, Closed, b.State(), "a success never trips, even when it reaches MinimumCalls")
		run(t, b, 1, errBoom) // 4 of 5
		assert.Equal(t, Open, b.State())

		b.Reset()
		// 10 calls: 4 failures first, then 6 successes: 40%.
		run(t, b, 4, errBoom) // trips? 4/4 = 100% at MinimumCalls
		assert.Equal(t, Open, b.State())
	})
}

func TestCountWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{FailureRate: 0.5, CountWindow: 10, MinimumCalls: 10})
		for range 4 { // F S S S ... keeps the rate at 25% or 40%
			run(t, b, 1, errBoom)
			run(t, b, 1, nil)
		}
		run(t, b, 2, nil)
		// Window: F S F S F S F S S S = 4/10.
		assert.Equal(t, Closed, b.State())
		// One failure: the oldest call (F) leaves, so still 4/10.
		run(t, b, 1, errBoom)
		assert.Equal(t, Closed, b.State())
		// Window now S F S F S F S S S F; one more F pushes out an S: 5/10.
		run(t, b, 1, errBoom)
		assert.Equal(t, Open, b.State())
	})
}

func TestTimeWindowFailureRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{FailureRate: 0.5, TimeWindow: 10 * time.Second, TimeWindowBuckets: 10, MinimumCalls: 4})
		run(t, b, 3, errBoom)
		bubble.Sleep(10 * time.Second) // those failures leave the window whole
		run(t, b, 3, nil)
		run(t, b, 2, errBoom) // 2 of 5, then... 2/5 = 40%
		assert.Equal(t, Closed, b.State())
		bubble.Sleep(5 * time.Second)
		run(t, b, 1, errBoom) // 3 of 6 = 50%
		assert.Equal(t, Open, b.State())
	})
}

func TestTimeWindowCountsManyCallsPerBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{FailureRate: 0.2, TimeWindow: time.Second, MinimumCalls: 1})
		run(t, b, 1000, nil)
		run(t, b, 249, errBoom) // 249/1249 < 20%
		assert.Equal(t, Closed, b.State())
		run(t, b, 1, errBoom) // 250/1250 = 20%
		assert.Equal(t, Open, b.State())
	})
}

func TestSlowCallRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{SlowCallRate: 0.5, SlowCallThreshold: 100 * time.Millisecond, CountWindow: 4, MinimumCalls: 4})
		slowCall(t, b, 99*time.Millisecond, nil)
		slowCall(t, b, 100*time.Millisecond, nil) // slow: at the threshold
		slowCall(t, b, time.Millisecond, nil)
		assert.Equal(t, Closed, b.State())
		slowCall(t, b, time.Second, errBoom) // a slow failure is slow too: 2/4
		assert.Equal(t, Open, b.State())
		m := b.Metrics()
		assert.Equal(t, uint64(2), m.SlowCalls)
		assert.Equal(t, uint64(3), m.Successes)
		assert.Equal(t, uint64(1), m.Failures)
	})
}

func TestSlowProbeReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, SlowCallThreshold: 100 * time.Millisecond, OpenDuration: time.Second})
		run(t, b, 1, errBoom)
		bubble.Sleep(time.Second)
		slowCall(t, b, 150*time.Millisecond, nil)
		assert.Equal(t, Open, b.State(), "a slow successful probe counts as a failed probe")
	})
}

func TestOpenRejectsWithRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: 10 * time.Second})
		run(t, b, 1, errBoom)
		bubble.Sleep(3 * time.Second)
		_, err := b.Allow()
		require.ErrorIs(t, err, ErrOpen)
		require.ErrorIs(t, err, seawall.ErrRejected)
		d, ok := seawall.RetryAfter(err)
		require.True(t, ok)
		assert.Equal(t, 7*time.Second, d)
		assert.Equal(t, "breaker: open", err.Error())

		called := false
		err = b.Do(t.Context(), func(context.Context) error { called = true; return nil })
		assert.ErrorIs(t, err, ErrOpen)
		assert.False(t, called, "Do must not run op when open")
	})
}

func TestHalfOpenProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second, HalfOpenProbes: 2, HalfOpenSuccesses: 3, OnStateChange: rec.hook})
		run(t, b, 1, errBoom)
		bubble.Sleep(time.Second)

		p1, err := b.Allow()
		require.NoError(t, err)
		assert.Equal(t, HalfOpen, b.State())
		p2, err := b.Allow()
		require.NoError(t, err)
		_, err = b.Allow()
		require.ErrorIs(t, err, ErrOpen, "a third concurrent probe is refused")
		d, hinted := seawall.RetryAfter(err)
		assert.True(t, hinted, "a hint while probes are in flight")
		assert.Equal(t, time.Second, d, "the open duration a failed probe would re-open for")

		p1.Done(nil)
		p3, err := b.Allow() // the freed slot
		require.NoError(t, err)
		p2.Done(nil)
		assert.Equal(t, HalfOpen, b.State(), "2 of 3 successes")
		p3.Done(nil)
		assert.Equal(t, Closed, b.State())
		assert.Equal(t, []string{"closed>open", "open>half-open", "half-open>closed"}, rec.transitions())
	})
}

func TestHalfOpenFailureReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second, HalfOpenProbes: 3})
		run(t, b, 1, errBoom)
		bubble.Sleep(time.Second)
		p1, _ := b.Allow()
		p2, _ := b.Allow()
		p1.Done(nil)
		p2.Done(errBoom)
		assert.Equal(t, Open, b.State())
		_, err := b.Allow()
		d, _ := seawall.RetryAfter(err)
		assert.Equal(t, time.Second, d, "a fixed open duration by default")
	})
}

func TestIgnoredProbeFreesItsSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second})
		run(t, b, 1, errBoom)
		bubble.Sleep(time.Second)
		p, err := b.Allow()
		require.NoError(t, err)
		p.Done(context.Canceled)
		assert.Equal(t, HalfOpen, b.State())
		assert.Equal(t, 1, run(t, b, 1, nil), "the slot is free again")
		assert.Equal(t, Closed, b.State())
	})
}

func TestOpenBackoffGrowsAndIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second, OpenBackoff: 2, MaxOpenDuration: 5 * time.Second})
		run(t, b, 1, errBoom)
		var got []time.Duration
		for range 5 {
			_, err := b.Allow()
			d, ok := seawall.RetryAfter(err)
			require.True(t, ok)
			got = append(got, d)
			bubble.Sleep(d)
			run(t, b, 1, errBoom) // the probe fails: a consecutive trip
		}
		assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, got)

		// Closing forgets the trips.
		bubble.Sleep(5 * time.Second)
		run(t, b, 1, nil)
		require.Equal(t, Closed, b.State())
		run(t, b, 1, errBoom)
		_, err := b.Allow()
		d, _ := seawall.RetryAfter(err)
		assert.Equal(t, time.Second, d)
	})
}

func TestOpenJitterStaysWithinBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: 10 * time.Second, OpenJitter: 0.5})
		seen := map[time.Duration]bool{}
		for range 50 {
			b.Reset()
			run(t, b, 1, errBoom)
			_, err := b.Allow()
			d, ok := seawall.RetryAfter(err)
			require.True(t, ok)
			require.GreaterOrEqual(t, d, 5*time.Second)
			require.LessOrEqual(t, d, 10*time.Second)
			seen[d] = true
		}
		assert.Greater(t, len(seen), 10, "jitter spreads the open durations")
	})
}

func TestOverrides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := mustNew(t, Config{ConsecutiveFailures: 1, OnStateChange: rec.hook})

		b.ForceOpen()
		assert.Equal(t, ForcedOpen, b.State())
		bubble.Sleep(time.Hour)
		assert.Zero(t, run(t, b, 3, nil), "forced open never half-opens")

		b.Disable()
		assert.Equal(t, 10, run(t, b, 10, errBoom), "disabled admits everything")
		assert.Equal(t, Disabled, b.State(), "and never trips")
		assert.Equal(t, uint64(10), b.Metrics().Failures, "but keeps counting")

		b.Reset()
		assert.Equal(t, Closed, b.State())
		b.Reset() // closed to closed is no transition
		run(t, b, 1, errBoom)
		assert.Equal(t, Open, b.State())
		b.Reset()
		assert.Equal(t, []string{"closed>forced-open", "forced-open>disabled", "disabled>closed", "closed>open", "open>closed"}, rec.transitions())
		assert.Equal(t, uint64(5), b.Metrics().Transitions)
	})
}

func TestResetEmptiesTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, cfg := range []Config{
			{FailureRate: 0.5, CountWindow: 10, MinimumCalls: 4},
			{FailureRate: 0.5, TimeWindow: time.Minute, MinimumCalls: 4},
		} {
			b := mustNew(t, cfg)
			run(t, b, 3, errBoom)
			b.Reset()
			run(t, b, 3, nil)
			run(t, b, 1, errBoom) // 1/4 since the reset, not 4/7
			assert.Equal(t, Closed, b.State())
		}
	})
}

func TestStalePermitsDoNotCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{FailureRate: 0.5, CountWindow: 4, MinimumCalls: 4, OpenDuration: time.Second})
		stale := make([]Permit, 4)
		for i := range stale {
			stale[i], _ = b.Allow()
		}
		run(t, b, 4, errBoom)
		require.Equal(t, Open, b.State())
		bubble.Sleep(time.Second)
		run(t, b, 1, nil)
		require.Equal(t, Closed, b.State())
		// Successes admitted before the trip finish now: they are counted
		// in Metrics but not in the new window...
		for _, p := range stale[:3] {
			p.Done(nil)
		}
		// ...so 1 of the next 4 failing, then the stale failure, trips no rule.
		run(t, b, 3, nil)
		run(t, b, 1, errBoom)
		stale[3].Done(errBoom)
		assert.Equal(t, Closed, b.State())
		assert.Equal(t, uint64(7), b.Metrics().Successes)
	})
}

func TestDoPanicIsAFailureAndContinues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1})
		assert.PanicsWithValue(t, "kaboom", func() {
			_ = b.Do(t.Context(), func(context.Context) error { panic("kaboom") })
		})
		assert.Equal(t, Open, b.State())
		assert.Equal(t, uint64(1), b.Metrics().Failures)
	})
}

func TestDoPanicFreesTheProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second})
		run(t, b, 1, errBoom)
		bubble.Sleep(time.Second)
		assert.Panics(t, func() {
			_ = b.Do(t.Context(), func(context.Context) error { panic("kaboom") })
		})
		assert.Equal(t, Open, b.State(), "a panicking probe is a failed probe")
	})
}

func TestDoClassification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 2})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for range 5 {
			err := b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
			require.ErrorIs(t, err, context.Canceled)
		}
		assert.Equal(t, Closed, b.State(), "a cancelled context is not a failure")
		assert.Equal(t, uint64(5), b.Metrics().Ignored)

		err := b.Do(t.Context(), func(context.Context) error { return context.DeadlineExceeded })
		assert.ErrorIs(t, err, context.DeadlineExceeded, "Do returns op's error unchanged")
		_ = b.Do(t.Context(), func(context.Context) error { return context.DeadlineExceeded })
		assert.Equal(t, Open, b.State(), "a deadline exceeded is a failure")
	})
}

func TestCustomClassify(t *testing.T) {
	errNotFound := errors.New("not found")
	b := mustNew(t, Config{ConsecutiveFailures: 1, Classify: func(err error) Outcome {
		if errors.Is(err, errNotFound) {
			return Success
		}
		return Failure
	}})
	run(t, b, 10, errNotFound)
	assert.Equal(t, Closed, b.State())
	assert.Equal(t, uint64(10), b.Metrics().Successes)
	p, _ := b.Allow()
	p.Record(Outcome(42)) // unknown outcomes are failures
	assert.Equal(t, Open, b.State())
}

func TestHookMayReenter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *Breaker
		var states []State
		b = mustNew(t, Config{ConsecutiveFailures: 1, OnStateChange: func(c StateChange) {
			states = append(states, b.State())
			_ = b.Metrics()
			if c.To == Open {
				b.Reset() // re-entering from the hook must not deadlock
			}
		}})
		run(t, b, 1, errBoom)
		assert.Equal(t, Closed, b.State())
		assert.Equal(t, []State{Open, Closed}, states)
	})
}

func TestMetricsAddUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 3, OpenDuration: time.Minute, Name: "accounts"})
		run(t, b, 7, nil)
		run(t, b, 2, context.Canceled)
		run(t, b, 3, errBoom)
		run(t, b, 4, nil) // rejected
		m := b.Metrics()
		want := Metrics{State: Open, Calls: 12, Successes: 7, Failures: 3, Ignored: 2, Rejections: 4, Transitions: 1, ProbeIn: time.Minute}
		want.Moves[Closed][Open] = 1
		assert.Equal(t, want, m)
		bubble.Sleep(20 * time.Second)
		assert.Equal(t, 40*time.Second, b.Metrics().ProbeIn, "the time to the next probe counts down")
	})
}

func TestZeroPermitIsHarmless(t *testing.T) {
	var p Permit
	p.Done(errBoom)
	p.Record(Failure)
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", Open: "open", HalfOpen: "half-open", ForcedOpen: "forced-open", Disabled: "disabled", 9: "unknown"} {
		assert.Equal(t, want, s.String())
	}
}

// TestClockBeforeEpoch: a breaker made outside a synctest bubble and used
// inside it sees the clock before its epoch. It must not panic (the time
// window's bucket index would go negative) and must still trip.
func TestClockBeforeEpoch(t *testing.T) {
	b := mustNew(t, Config{FailureRate: 0.5, TimeWindow: time.Second, MinimumCalls: 2, SlowCallRate: 1, SlowCallThreshold: time.Hour})
	synctest.Test(t, func(t *testing.T) {
		run(t, b, 2, errBoom)
		assert.Equal(t, Open, b.State())
	})
}

// TestStateIsTrueWithoutCalls: State reports what a call would see now, read
// from the clock: an open breaker whose open period has passed reads
// half-open before any call arrives. A read is no transition: it neither
// fires OnStateChange nor counts in Metrics().Transitions.
func TestStateIsTrueWithoutCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second, OpenBackoff: 2, OnStateChange: rec.hook})
		run(t, b, 1, errBoom)
		bubble.Sleep(time.Second - time.Nanosecond)
		assert.Equal(t, Open, b.State(), "a nanosecond before the period ends")
		assert.Equal(t, Open, b.Metrics().State)

		bubble.Sleep(time.Nanosecond)
		assert.Equal(t, HalfOpen, b.State(), "a probe would be admitted now")
		m := b.Metrics()
		assert.Equal(t, HalfOpen, m.State, "Metrics agrees with State")
		assert.Equal(t, uint64(1), m.Transitions, "reading is no transition")
		assert.Equal(t, []string{"closed>open"}, rec.transitions(), "nor a state change to report")

		// The call that reads half-open is admitted as a probe, and the
		// transition happens, once, now.
		p, err := b.Allow()
		require.NoError(t, err, "State said half-open: a call is admitted")
		assert.Equal(t, HalfOpen, b.State())
		assert.Equal(t, uint64(2), b.Metrics().Transitions)
		p.Done(errBoom) // re-opens for 2s

		bubble.Sleep(2*time.Second - time.Nanosecond)
		assert.Equal(t, Open, b.State())
		bubble.Sleep(time.Nanosecond)
		assert.Equal(t, HalfOpen, b.State(), "the second open period ends too")
		assert.Equal(t, []string{"closed>open", "open>half-open", "half-open>open"}, rec.transitions())
		assert.Equal(t, uint64(3), b.Metrics().Transitions)

		b.ForceOpen()
		bubble.Sleep(time.Hour)
		assert.Equal(t, ForcedOpen, b.State(), "forced open has no open period")
	})
}

// TestHalfOpenRejectionHint: a call refused because every probe slot is taken
// carries a retry-after hint: the open duration the breaker would re-open for
// if a probe failed now, without jitter. It does not shrink as time passes:
// the probes' outcome is awaited.
func TestHalfOpenRejectionHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second, OpenBackoff: 2, MaxOpenDuration: 3 * time.Second})
		hint := func() time.Duration {
			t.Helper()
			_, err := b.Allow()
			require.ErrorIs(t, err, ErrOpen)
			require.ErrorIs(t, err, seawall.ErrRejected)
			require.ErrorIs(t, err, seawall.ErrCircuitOpen)
			assert.Equal(t, "breaker: open", err.Error())
			d, ok := seawall.RetryAfter(err)
			require.True(t, ok, "a rejection of a tripped breaker carries a hint")
			return d
		}
		run(t, b, 1, errBoom) // trip 1: open 1s
		bubble.Sleep(time.Second)
		probe, err := b.Allow()
		require.NoError(t, err)
		require.Equal(t, HalfOpen, b.State())
		assert.Equal(t, 2*time.Second, hint(), "a failed probe would re-open for 1s × 2")
		bubble.Sleep(time.Minute)
		assert.Equal(t, 2*time.Second, hint(), "the probe's outcome is awaited: the hint does not run down")

		probe.Done(errBoom) // trip 2: open 2s
		assert.Equal(t, 2*time.Second, hint())
		bubble.Sleep(2 * time.Second)
		probe, err = b.Allow()
		require.NoError(t, err)
		assert.Equal(t, 3*time.Second, hint(), "1s × 4, capped at MaxOpenDuration")
		probe.Done(nil)
		require.Equal(t, Closed, b.State())

		// With jitter, the hint is the longest the re-opened period may be.
		b = mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second, OpenJitter: 0.5})
		run(t, b, 1, errBoom)
		bubble.Sleep(time.Second)
		_, err = b.Allow()
		require.NoError(t, err)
		assert.Equal(t, time.Second, hint())
	})
}

// TestStateChangeCauses: every transition reports why it happened and, when
// it leaves the closed state, the counts the rules judged at that moment.
func TestStateChangeCauses(t *testing.T) {
	const ms = time.Millisecond
	slowRule := Config{ConsecutiveFailures: 5, SlowCallRate: 0.5, SlowCallThreshold: 100 * ms, CountWindow: 4, MinimumCalls: 4}
	for _, tc := range []struct {
		name string
		cfg  Config
		act  func(t *testing.T, b *Breaker)
		want StateChange
	}{{
		name: "consecutive failures",
		cfg:  Config{ConsecutiveFailures: 3},
		act:  func(t *testing.T, b *Breaker) { run(t, b, 2, nil); run(t, b, 3, errBoom) },
		want: StateChange{From: Closed, To: Open, Cause: CauseConsecutiveFailures, Counts: Counts{ConsecutiveFailures: 3}},
	}, {
		name: "consecutive failures, with a window",
		cfg:  Config{ConsecutiveFailures: 3, FailureRate: 0.9, CountWindow: 10, MinimumCalls: 10},
		act:  func(t *testing.T, b *Breaker) { run(t, b, 4, nil); run(t, b, 3, errBoom) },
		want: StateChange{From: Closed, To: Open, Cause: CauseConsecutiveFailures, Counts: Counts{ConsecutiveFailures: 3, Calls: 7, Failures: 3}},
	}, {
		name: "failure rate over a count window",
		cfg:  Config{FailureRate: 0.5, CountWindow: 4, MinimumCalls: 4},
		act: func(t *testing.T, b *Breaker) {
			run(t, b, 1, errBoom) // leaves the window...
			run(t, b, 3, nil)
			run(t, b, 1, errBoom) // ...here: 1 of the last 4
			run(t, b, 1, errBoom) // 2 of the last 4
		},
		want: StateChange{From: Closed, To: Open, Cause: CauseFailureRate, Counts: Counts{Calls: 4, Failures: 2}},
	}, {
		name: "failure rate over a time window",
		cfg:  Config{FailureRate: 0.5, TimeWindow: 10 * time.Second, MinimumCalls: 4},
		act: func(t *testing.T, b *Breaker) {
			run(t, b, 3, errBoom)
			bubble.Sleep(10 * time.Second) // those leave the window
			run(t, b, 3, nil)
			run(t, b, 3, errBoom)
		},
		want: StateChange{From: Closed, To: Open, Cause: CauseFailureRate, Counts: Counts{Calls: 6, Failures: 3}},
	}, {
		name: "slow-call rate",
		cfg:  slowRule,
		act: func(t *testing.T, b *Breaker) {
			slowCall(t, b, ms, nil)
			slowCall(t, b, 100*ms, nil) // slow
			slowCall(t, b, ms, errBoom)
			slowCall(t, b, 150*ms, errBoom) // slow: 2 of 4
		},
		want: StateChange{From: Closed, To: Open, Cause: CauseSlowCallRate, Counts: Counts{ConsecutiveFailures: 2, Calls: 4, Failures: 2, SlowCalls: 2}},
	}, {
		name: "open duration elapsed",
		cfg:  Config{ConsecutiveFailures: 1, OpenDuration: time.Second},
		act: func(t *testing.T, b *Breaker) {
			run(t, b, 1, errBoom)
			bubble.Sleep(time.Second)
			_, err := b.Allow()
			require.NoError(t, err)
		},
		want: StateChange{From: Open, To: HalfOpen, Cause: CauseOpenDurationElapsed},
	}, {
		name: "failed probe",
		cfg:  Config{ConsecutiveFailures: 1, OpenDuration: time.Second},
		act: func(t *testing.T, b *Breaker) {
			run(t, b, 1, errBoom)
			bubble.Sleep(time.Second)
			require.Equal(t, 1, run(t, b, 1, errBoom))
		},
		want: StateChange{From: HalfOpen, To: Open, Cause: CauseProbeFailed},
	}, {
		name: "slow probe",
		cfg:  Config{ConsecutiveFailures: 1, OpenDuration: time.Second, SlowCallThreshold: 100 * ms},
		act: func(t *testing.T, b *Breaker) {
			run(t, b, 1, errBoom)
			bubble.Sleep(time.Second)
			slowCall(t, b, 100*ms, nil)
		},
		want: StateChange{From: HalfOpen, To: Open, Cause: CauseSlowProbe},
	}, {
		name: "probes succeeded",
		cfg:  Config{ConsecutiveFailures: 1, OpenDuration: time.Second, HalfOpenSuccesses: 2, HalfOpenProbes: 2},
		act: func(t *testing.T, b *Breaker) {
			run(t, b, 1, errBoom)
			bubble.Sleep(time.Second)
			require.Equal(t, 2, run(t, b, 2, nil))
		},
		want: StateChange{From: HalfOpen, To: Closed, Cause: CauseProbesSucceeded},
	}, {
		name: "force open, from closed",
		cfg:  Config{ConsecutiveFailures: 5, FailureRate: 0.9, CountWindow: 10, MinimumCalls: 10},
		act:  func(t *testing.T, b *Breaker) { run(t, b, 3, nil); run(t, b, 2, errBoom); b.ForceOpen() },
		want: StateChange{From: Closed, To: ForcedOpen, Cause: CauseForceOpen, Counts: Counts{ConsecutiveFailures: 2, Calls: 5, Failures: 2}},
	}, {
		name: "force open, from closed: the window has slid",
		cfg:  Config{FailureRate: 0.9, CountWindow: 4, MinimumCalls: 4},
		act:  func(t *testing.T, b *Breaker) { run(t, b, 2, errBoom); run(t, b, 3, nil); b.ForceOpen() },
		want: StateChange{From: Closed, To: ForcedOpen, Cause: CauseForceOpen, Counts: Counts{Calls: 4, Failures: 1}},
	}, {
		name: "disable, from closed over a time window",
		cfg:  Config{FailureRate: 0.9, TimeWindow: time.Second, MinimumCalls: 10},
		act:  func(t *testing.T, b *Breaker) { run(t, b, 3, nil); run(t, b, 1, errBoom); b.Disable() },
		want: StateChange{From: Closed, To: Disabled, Cause: CauseDisable, Counts: Counts{Calls: 4, Failures: 1}},
	}, {
		name: "reset, from open",
		cfg:  Config{ConsecutiveFailures: 1},
		act:  func(t *testing.T, b *Breaker) { run(t, b, 1, errBoom); b.Reset() },
		want: StateChange{From: Open, To: Closed, Cause: CauseReset},
	}, {
		name: "force open, from disabled",
		cfg:  Config{ConsecutiveFailures: 1},
		act:  func(t *testing.T, b *Breaker) { b.Disable(); run(t, b, 3, errBoom); b.ForceOpen() },
		want: StateChange{From: Disabled, To: ForcedOpen, Cause: CauseForceOpen},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				tc.cfg.Name = "accounts"
				tc.cfg.OnStateChange = rec.hook
				b := mustNew(t, tc.cfg)
				tc.act(t, b)
				tc.want.Name = "accounts"
				assert.Equal(t, tc.want, rec.last(t))
			})
		})
	}
}

func TestCauseString(t *testing.T) {
	for c, want := range map[Cause]string{
		0: "unknown", CauseConsecutiveFailures: "consecutive-failures", CauseFailureRate: "failure-rate",
		CauseSlowCallRate: "slow-call-rate", CauseProbeFailed: "probe-failed", CauseSlowProbe: "slow-probe",
		CauseOpenDurationElapsed: "open-duration-elapsed", CauseProbesSucceeded: "probes-succeeded",
		CauseForceOpen: "force-open", CauseDisable: "disable", CauseReset: "reset", 99: "unknown",
	} {
		assert.Equal(t, want, c.String())
	}
}

// TestRejectionsAndReadsAllocateNothing: refusing a call, with its hint, and
// reading the state allocate nothing, whatever the state.
func TestRejectionsAndReadsAllocateNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{ConsecutiveFailures: 1, OpenDuration: time.Second})
		reject := func() {
			if _, err := b.Allow(); err == nil {
				t.Fatal("admitted")
			}
		}
		run(t, b, 1, errBoom)
		assert.Zero(t, testing.AllocsPerRun(100, reject), "open")
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = b.State() }), "State while open")
		bubble.Sleep(time.Second)
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = b.State() }), "State after the open period")
		_, err := b.Allow()
		require.NoError(t, err)
		assert.Zero(t, testing.AllocsPerRun(100, reject), "half-open, probe slot taken")
		b.ForceOpen()
		assert.Zero(t, testing.AllocsPerRun(100, reject), "forced open")
	})
}
