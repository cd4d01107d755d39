package storm

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runFleet runs the variants of a fleet in a synctest bubble (virtual
// time), with Fleet.Shared nil: the replicas of (3) share one in-process
// limiter, a shared limit with no network in between.
func runFleet(t *testing.T, s Scenario, f Fleet) map[Variant]*FleetResult {
	t.Helper()
	var res []*FleetResult
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var err error
		res, err = RunFleet(t.Context(), s, f, AllVariants)
		require.NoError(t, err)
		assert.LessOrEqual(t, time.Since(start), s.Length+s.Deadline+s.AttemptTimeout, "the run ends with the last request")
	})
	m := map[Variant]*FleetResult{}
	for _, r := range res {
		m[r.Variant] = r
	}
	require.Len(t, m, int(NumVariants))
	return m
}

// TestFleet holds the default fleet run to the program's claims, in
// virtual time: one limit shared by the replicas holds the backend to its
// capacity in every second and serves what it can; a local limit at the
// capacity on each replica lets the spike through and the backend drowns;
// a local limit at the capacity ÷ the replicas holds the total but, with
// the callers spread unevenly, refuses while capacity idles.
func TestFleet(t *testing.T) {
	s, f := DefaultFleet()
	require.Equal(t, []int{1, 0, 1, 0, 1, 2, 2, 1}, f.Assignment(s), "seed 1 spreads the callers 2 4 2 0: uneven")
	m := runFleet(t, s, f)
	capacity := s.Capacity()
	burst := s.Derived().Limiter.Burst
	copied, split, shared := m[Copied], m[Split], m[Shared]

	for _, r := range m {
		assert.Equal(t, shared.Result.Metrics.Requests, r.Result.Metrics.Requests, "%v: the same arrivals", r.Variant)
		assert.Zero(t, r.Errors, "%v: the limits refuse with a hint", r.Variant)
	}
	// The bound of a token bucket: Rate × 1s + Burst in any second. In
	// virtual time it is exact.
	assert.LessOrEqual(t, shared.Peak, int(capacity)+burst, "(3) holds the backend to its capacity in every second")
	assert.InDelta(t, capacity, shared.AdmittedRate, 0.03*capacity, "(3) admits the capacity during the spike, no less")
	assert.GreaterOrEqual(t, shared.Result.Metrics.GoodputShare, 0.85, "(3) serves what it admits")

	assert.Greater(t, float64(copied.Peak), 1.2*capacity, "(1) lets more than the capacity through")
	assert.Less(t, copied.Result.Metrics.GoodputShare, 0.7, "(1)'s backend drowns")
	assert.Greater(t, copied.Result.Metrics.Wasted, 0.1, "(1)'s backend works for callers who left")
	assert.Less(t, copied.Result.Metrics.GoodputShare, shared.Result.Metrics.GoodputShare-0.2)

	assert.LessOrEqual(t, split.Peak, int(capacity)+burst, "(2) holds the total too")
	assert.Zero(t, split.Replicas[3].Attempts, "replica 3 has no caller")
	assert.Less(t, split.AdmittedRate, 0.8*capacity, "(2) refuses while a quarter of the capacity idles")
	assert.Less(t, split.Result.Metrics.GoodputShare, 0.8)
	assert.Less(t, split.Result.Metrics.GoodputShare, shared.Result.Metrics.GoodputShare-0.1)

	var out bytes.Buffer
	DescribeFleet(&out, s, f, AllVariants)
	FleetTable(&out, s, AllFleetResults(m))
	FleetLegend(&out, s, AllFleetResults(m))
	FleetSparklines(&out, s, AllFleetResults(m))
	t.Log("\n" + out.String())
	assert.Contains(t, out.String(), "callers per replica 2 4 2 0")
	assert.Contains(t, out.String(), "3 shared, at capacity")
}

// AllFleetResults returns m's results in the order of AllVariants.
func AllFleetResults(m map[Variant]*FleetResult) []*FleetResult {
	var out []*FleetResult
	for _, v := range AllVariants {
		out = append(out, m[v])
	}
	return out
}

// TestFleetEven checks what (2) is good for: with the callers spread
// evenly over the replicas, the capacity ÷ the replicas on each holds the
// total and serves about as much as one shared limit.
func TestFleetEven(t *testing.T) {
	s, f := DefaultFleet()
	f.Assign = []int{0, 1, 2, 3, 0, 1, 2, 3}
	m := runFleet(t, s, f)
	capacity := s.Capacity()
	split, shared := m[Split], m[Shared]
	assert.LessOrEqual(t, split.Peak, int(capacity)+s.Derived().Limiter.Burst)
	assert.Greater(t, split.AdmittedRate, 0.9*capacity, "an even load uses the capacity")
	assert.Greater(t, split.Result.Metrics.GoodputShare, shared.Result.Metrics.GoodputShare-0.1)
}

func TestFleetValidate(t *testing.T) {
	s, _ := DefaultFleet()
	for _, f := range []Fleet{
		{Replicas: 0},
		{Replicas: 101},
		{Replicas: 2, Assign: []int{0, 1}},
		{Replicas: 2, Assign: []int{0, 1, 0, 1, 0, 1, 0, 2}},
	} {
		assert.Error(t, f.Validate(s), "%+v", f)
		_, err := RunFleet(t.Context(), s, f, AllVariants)
		assert.Error(t, err, "%+v", f)
	}
	s.HTTP = true
	_, err := RunFleet(t.Context(), s, Fleet{Replicas: 2}, AllVariants)
	assert.ErrorContains(t, err, "HTTP")
}

func TestPeak(t *testing.T) {
	assert.Equal(t, 0, peak(nil, 3))
	assert.Equal(t, 6, peak([]int{1, 2, 3}, 5))
	assert.Equal(t, 9, peak([]int{1, 4, 5, 0, 2, 3}, 2))
}

func TestCheckFleet(t *testing.T) {
	s, _ := DefaultFleet()
	late := Lateness{Timers: 100}
	ok := func(v Variant, warm float64) *FleetResult {
		return &FleetResult{Variant: v, Result: &Result{Metrics: Metrics{WarmupSuccess: warm}}}
	}
	assert.Empty(t, CheckFleet(s, late, []*FleetResult{ok(Copied, 1), ok(Split, 0.5), ok(Shared, 1)}),
		"(2) refuses some of the warm-up by design")
	why := CheckFleet(s, late, []*FleetResult{ok(Copied, 1), ok(Split, 1), ok(Shared, 0.9)})
	require.Len(t, why, 1)
	assert.Contains(t, why[0], "(3) served 90.0%")
	assert.NotEmpty(t, CheckFleet(s, Lateness{Timers: 100, P99: 5 * time.Millisecond}, nil))
}

func TestVariantText(t *testing.T) {
	for _, v := range AllVariants {
		b, err := v.MarshalText()
		require.NoError(t, err)
		var got Variant
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, v, got)
	}
	var v Variant
	assert.Error(t, v.UnmarshalText([]byte("4")))
	var st Strategy
	require.NoError(t, st.UnmarshalText([]byte("g")))
	assert.Equal(t, Adaptive, st)
	assert.Error(t, st.UnmarshalText([]byte("h")))
}

// TestFleetCancel checks that a cancelled fleet run ends at once with the
// context's error, once, and leaves no goroutine behind.
func TestFleetCancel(t *testing.T) {
	s, f := DefaultFleet()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := RunFleet(ctx, s, f, AllVariants)
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.Less(t, time.Since(start), 2*time.Second+s.Deadline)
	})
}
