package otelseawall_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/otelseawall"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// instrument returns a registry reported by NewMetrics to a manual reader.
func instrument(t *testing.T) (*registry.Registry, *sdkmetric.ManualReader) {
	t.Helper()
	reg, err := registry.New()
	require.NoError(t, err)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelseawall.NewMetrics(reg, otelseawall.WithMeterProvider(mp))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })
	return reg, reader
}

// collect returns the metrics of the otelseawall scope, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelseawall.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func pol(name string, kv ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append([]attribute.KeyValue{otelseawall.AttrPolicy.String(name)}, kv...)...)
}

func ip(v int64, s attribute.Set) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: s, Value: v}
}

func fp(v float64, s attribute.Set) metricdata.DataPoint[float64] {
	return metricdata.DataPoint[float64]{Attributes: s, Value: v}
}

func counter(name, unit string, pts ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: unit, Data: metricdata.Sum[int64]{
		DataPoints: pts, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}}
}

func upDown(name, unit string, pts ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: unit, Data: metricdata.Sum[int64]{
		DataPoints: pts, Temporality: metricdata.CumulativeTemporality}}
}

func gauge(name, unit string, pts ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: unit, Data: metricdata.Gauge[int64]{DataPoints: pts}}
}

func fgauge(name, unit string, pts ...metricdata.DataPoint[float64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: unit, Data: metricdata.Gauge[float64]{DataPoints: pts}}
}

// assertMetrics checks each expected metric against the one collected
// (descriptions aside), and that nothing else was collected.
func assertMetrics(t *testing.T, got map[string]metricdata.Metrics, want ...metricdata.Metrics) {
	t.Helper()
	names := map[string]bool{}
	for _, w := range want {
		names[w.Name] = true
		g, ok := got[w.Name]
		if !assert.True(t, ok, "metric %s not collected", w.Name) {
			continue
		}
		w.Description = g.Description
		metricdatatest.AssertEqual(t, w, g, metricdatatest.IgnoreTimestamp())
	}
	for n := range got {
		if _, isHist := got[n].Data.(metricdata.Histogram[float64]); isHist {
			continue
		}
		if _, isHist := got[n].Data.(metricdata.Histogram[int64]); isHist {
			continue
		}
		assert.True(t, names[n], "unexpected metric %s", n)
	}
}

// hist is what the tests check of a histogram's series.
type hist struct {
	count    uint64
	sum      float64
	min, max float64
	bounds   []float64
}

func histOf(t *testing.T, m metricdata.Metrics, s attribute.Set) hist {
	t.Helper()
	switch d := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if p.Attributes.Equals(&s) {
				mn, _ := p.Min.Value()
				mx, _ := p.Max.Value()
				return hist{p.Count, p.Sum, mn, mx, p.Bounds}
			}
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			if p.Attributes.Equals(&s) {
				mn, _ := p.Min.Value()
				mx, _ := p.Max.Value()
				return hist{p.Count, float64(p.Sum), float64(mn), float64(mx), p.Bounds}
			}
		}
	}
	t.Errorf("%s: no series %v", m.Name, s.Encoded(attribute.DefaultEncoder()))
	return hist{}
}

var errBoom = errors.New("boom")

// TestEveryInstrument scripts calls through one policy of each kind and
// checks every instrument's name, unit, value and attributes.
func TestEveryInstrument(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg, reader := instrument(t)

		// A breaker: a slow success, an ignored call, two failures that
		// trip it for 10s, a rejection.
		br, err := breaker.New(breaker.Config{ConsecutiveFailures: 2, OpenDuration: 10 * time.Second, SlowCallThreshold: 100 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, reg.Register("accounts", br))
		p, err := br.Allow()
		require.NoError(t, err)
		bubble.Sleep(200 * time.Millisecond)
		p.Done(nil)
		p, _ = br.Allow()
		p.Done(context.Canceled)
		for range 2 {
			p, _ = br.Allow()
			p.Done(errBoom)
		}
		tripped := time.Now()
		_, err = br.Allow()
		require.ErrorIs(t, err, breaker.ErrOpen)
		bubble.Sleep(4 * time.Second)

		// A group: key a succeeds, key b trips.
		g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1}, 2)
		require.NoError(t, err)
		require.NoError(t, reg.Register("hosts", g))
		_ = g.Do(t.Context(), "a", func(context.Context) error { return nil })
		_ = g.Do(t.Context(), "b", func(context.Context) error { return errBoom })

		// A retry (and its budget): a call that succeeds at its third
		// attempt after 1s and 2s, a call that fails for good at once.
		rt, err := retry.New(retry.Config{MaxAttempts: 3, Delay: time.Second, Jitter: retry.NoJitter, Budget: retry.BudgetConfig{MinRetriesPerSecond: 10}})
		require.NoError(t, err)
		require.NoError(t, reg.Register("accounts.retry", rt))
		n := 0
		require.NoError(t, rt.Do(t.Context(), func(context.Context) error {
			if n++; n < 3 {
				return errBoom
			}
			return nil
		}))
		require.Error(t, rt.Do(t.Context(), func(context.Context) error { return seawall.Permanent(errBoom) }))

		// A bulkhead of one slot and one place in its queue: a rejection,
		// and a call admitted after 50ms in the queue.
		bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 1})
		require.NoError(t, err)
		require.NoError(t, reg.Register("pool", bh))
		require.True(t, bh.TryAcquire())
		require.False(t, bh.TryAcquire())
		done := make(chan error)
		go func() { done <- bh.Acquire(context.Background()) }()
		synctest.Wait()
		bubble.Sleep(50 * time.Millisecond)
		bh.Release()
		require.NoError(t, <-done)
		defer bh.Release()

		// An adaptive limiter, one call.
		al, err := adaptive.New(adaptive.Config{})
		require.NoError(t, err)
		require.NoError(t, reg.Register("server", al))
		ap, ok := al.TryAcquire()
		require.True(t, ok)
		bubble.Sleep(10 * time.Millisecond)
		ap.Done(nil)

		// Rate limiters: 2 of 3 calls admitted.
		rl, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 2})
		require.NoError(t, err)
		require.NoError(t, reg.Register("login", rl))
		for range 3 {
			rl.Allow()
		}
		kl, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1, Burst: 1}, MaxKeys: 10})
		require.NoError(t, err)
		require.NoError(t, reg.Register("per-user", kl))
		kl.Allow("u1")
		kl.Allow("u1")
		kl.Allow("u2")

		// A throttle whose backend refused 10 requests, then throttles one.
		rnd := 0.999 // above the throttle's maximum probability: it admits
		th, err := throttle.New(throttle.Config{Rand: func() float64 { return rnd }})
		require.NoError(t, err)
		require.NoError(t, reg.Register("backend", th))
		for range 10 {
			tp, err := th.Allow()
			require.NoError(t, err)
			tp.Done(seawall.WithRetryAfter(seawall.NewRejection("busy"), time.Second))
		}
		rnd = 0
		_, err = th.Allow()
		require.ErrorIs(t, err, throttle.ErrThrottled)

		got := collect(t, reader)
		am, tm := al.Metrics(), th.Metrics()
		require.EqualValues(t, 10, tm.Refused)
		const O = otelseawall.AttrOutcome
		S := otelseawall.AttrBreakerState.String
		budget := "accounts.retry.budget"
		want := []metricdata.Metrics{
			gauge(otelseawall.MetricBreakerState, "{state}", ip(1, pol("accounts", S("open")))),
			counter(otelseawall.MetricBreakerCalls, "{call}",
				ip(1, pol("accounts", O.String("success"))), ip(2, pol("accounts", O.String("failure"))),
				ip(1, pol("accounts", O.String("ignored"))), ip(1, pol("accounts", O.String("rejected")))),
			counter(otelseawall.MetricBreakerSlowCalls, "{call}", ip(1, pol("accounts"))),
			counter(otelseawall.MetricBreakerTransitions, "{transition}",
				ip(1, pol("accounts", otelseawall.AttrFromState.String("closed"), otelseawall.AttrToState.String("open")))),
			fgauge(otelseawall.MetricBreakerProbeIn, "s", fp((10*time.Second-time.Since(tripped)).Seconds(), pol("accounts"))),

			upDown(otelseawall.MetricGroupKeys, "{breaker}", ip(2, pol("hosts"))),
			upDown(otelseawall.MetricGroupBreakers, "{breaker}",
				ip(1, pol("hosts", S("closed"))), ip(1, pol("hosts", S("open"))), ip(0, pol("hosts", S("half-open"))),
				ip(0, pol("hosts", S("forced-open"))), ip(0, pol("hosts", S("disabled")))),
			counter(otelseawall.MetricGroupEvictions, "{breaker}", ip(0, pol("hosts"))),
			upDown(otelseawall.MetricGroupCalls, "{call}",
				ip(1, pol("hosts", O.String("success"))), ip(1, pol("hosts", O.String("failure"))),
				ip(0, pol("hosts", O.String("ignored"))), ip(0, pol("hosts", O.String("rejected")))),
			upDown(otelseawall.MetricGroupSlowCalls, "{call}", ip(0, pol("hosts"))),

			counter(otelseawall.MetricRetryRetries, "{retry}", ip(2, pol("accounts.retry"))),
			counter(otelseawall.MetricRetryGaveUp, "{call}", func() []metricdata.DataPoint[int64] {
				var pts []metricdata.DataPoint[int64]
				for r := retry.ReasonNotRetryable; r <= retry.ReasonContext; r++ {
					v := int64(0)
					if r == retry.ReasonNotRetryable {
						v = 1
					}
					pts = append(pts, ip(v, pol("accounts.retry", otelseawall.AttrRetryReason.String(r.String()))))
				}
				return pts
			}()...),
			counter(otelseawall.MetricBudgetRequests, "{request}", ip(2, pol(budget))),
			counter(otelseawall.MetricBudgetRetriesAllowed, "{retry}", ip(2, pol(budget))),
			counter(otelseawall.MetricBudgetExhausted, "{retry}", ip(0, pol(budget))),

			upDown(otelseawall.MetricBulkheadInFlight, "{call}", ip(1, pol("pool"))),
			upDown(otelseawall.MetricBulkheadWaiting, "{call}", ip(0, pol("pool"))),
			upDown(otelseawall.MetricBulkheadLimit, "{call}", ip(1, pol("pool"))),
			counter(otelseawall.MetricBulkheadAdmitted, "{call}", ip(2, pol("pool"))),
			counter(otelseawall.MetricBulkheadRejected, "{call}", ip(1, pol("pool"))),

			upDown(otelseawall.MetricAdaptiveInFlight, "{call}", ip(0, pol("server"))),
			upDown(otelseawall.MetricAdaptiveWaiting, "{call}", ip(0, pol("server"))),
			upDown(otelseawall.MetricAdaptiveLimit, "{call}", ip(int64(am.Limit), pol("server"))),
			counter(otelseawall.MetricAdaptiveAdmitted, "{call}", ip(1, pol("server"))),
			counter(otelseawall.MetricAdaptiveRejected, "{call}", ip(0, pol("server"))),

			counter(otelseawall.MetricRateLimitCalls, "{call}",
				ip(2, pol("login", O.String("admitted"))), ip(1, pol("login", O.String("rejected"))),
				ip(2, pol("per-user", O.String("admitted"))), ip(1, pol("per-user", O.String("rejected")))),
			upDown(otelseawall.MetricRateLimitKeys, "{key}", ip(2, pol("per-user"))),

			fgauge(otelseawall.MetricThrottleProbability, "1", fp(tm.Probability, pol("backend"))),
			counter(otelseawall.MetricThrottleThrottled, "{call}", ip(int64(tm.Throttled), pol("backend"))),
			counter(otelseawall.MetricThrottleRefused, "{call}", ip(10, pol("backend"))),
		}
		if am.Baseline > 0 {
			want = append(want, fgauge(otelseawall.MetricAdaptiveLatencyBaseline, "s", fp(am.Baseline.Seconds(), pol("server"))))
		}
		if am.Sampled > 0 {
			want = append(want, fgauge(otelseawall.MetricAdaptiveLatencySampled, "s", fp(am.Sampled.Seconds(), pol("server"))))
		}
		assert.Greater(t, tm.Probability, 0.0)
		assert.EqualValues(t, 1, tm.Throttled)
		assertMetrics(t, got, want...)

		// The histograms: from the slow paths only.
		assert.Equal(t, hist{count: 1, sum: 2, min: 2, max: 2, bounds: []float64{1, 2, 3, 4, 5, 10}},
			histOf(t, got[otelseawall.MetricClientCallRetries], pol("accounts.retry")))
		assert.Equal(t, "{retry}", got[otelseawall.MetricClientCallRetries].Unit)
		h := histOf(t, got[otelseawall.MetricClientCallRetryDelay], pol("accounts.retry"))
		assert.Equal(t, uint64(1), h.count)
		assert.InDelta(t, 3.0, h.sum, 1e-9) // 1s + 2s
		assert.Equal(t, "s", got[otelseawall.MetricClientCallRetryDelay].Unit)
		h = histOf(t, got[otelseawall.MetricBulkheadWait], pol("pool"))
		assert.Equal(t, uint64(1), h.count)
		assert.InDelta(t, 0.05, h.sum, 1e-9)
		assert.Equal(t, 0.0005, h.bounds[0])
		assert.Equal(t, 30.0, h.bounds[len(h.bounds)-1])
		assert.Equal(t, "s", got[otelseawall.MetricBulkheadWait].Unit)
		if ah, ok := got[otelseawall.MetricAdaptiveWait]; ok {
			assert.Empty(t, ah.Data.(metricdata.Histogram[float64]).DataPoints, "no adaptive call waited")
		}

		// The state series follows the state: the open series goes, the
		// half-open one comes, once the open period has passed.
		bubble.Sleep(6 * time.Second)
		got = collect(t, reader)
		assertMetrics(t, map[string]metricdata.Metrics{otelseawall.MetricBreakerState: got[otelseawall.MetricBreakerState]},
			gauge(otelseawall.MetricBreakerState, "{state}", ip(1, pol("accounts", S("half-open")))))
	})
}

// TestBudgetTokens: a tokens-mode budget reports its tokens, a ratio-mode
// budget does not.
func TestBudgetTokens(t *testing.T) {
	reg, reader := instrument(t)
	tb, err := retry.NewBudget(retry.BudgetConfig{Mode: retry.TokensMode})
	require.NoError(t, err)
	rb, err := retry.NewBudget(retry.BudgetConfig{})
	require.NoError(t, err)
	require.NoError(t, reg.Register("tokens", tb))
	require.NoError(t, reg.Register("ratio", rb))
	got := collect(t, reader)[otelseawall.MetricBudgetTokens]
	metricdatatest.AssertEqual(t, fgauge(otelseawall.MetricBudgetTokens, "{token}", fp(tb.Metrics().Tokens, pol("tokens"))),
		metricdata.Metrics{Name: got.Name, Unit: got.Unit, Data: got.Data}, metricdatatest.IgnoreTimestamp())
}

// TestBoundedCardinality: a hundred thousand distinct keys through a keyed
// limiter and a breaker group (1500 and 100 times what they keep) make a
// handful of series.
func TestBoundedCardinality(t *testing.T) {
	reg, reader := instrument(t)
	kl, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1, Burst: 1}, MaxKeys: 64})
	require.NoError(t, err)
	g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1}, 1024)
	require.NoError(t, err)
	require.NoError(t, reg.Register("per-user", kl))
	require.NoError(t, reg.Register("hosts", g))
	const keys = 100_000
	done := make(chan struct{})
	go func() { // on the other core: the race detector makes this slow
		defer close(done)
		for i := range keys {
			kl.Allow(strconv.Itoa(i))
		}
	}()
	for i := range keys {
		key := strconv.Itoa(i)
		var err error
		if i%10_000 == 0 { // some open breakers, which the group keeps
			err = errBoom
		}
		_ = g.Do(t.Context(), key, func(context.Context) error { return err })
	}
	<-done
	got := collect(t, reader)
	series := 0
	for _, m := range got {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			series += len(d.DataPoints)
		case metricdata.Gauge[int64]:
			series += len(d.DataPoints)
		case metricdata.Gauge[float64]:
			series += len(d.DataPoints)
		case metricdata.Histogram[float64]:
			series += len(d.DataPoints)
		case metricdata.Histogram[int64]:
			series += len(d.DataPoints)
		}
	}
	// Keyed: 2 outcomes + keys. Group: keys, 5 states, evictions, 4
	// outcomes, slow calls.
	assert.LessOrEqual(t, series, 3+12)
	assert.Equal(t, 15, series)
	gm := g.Metrics()
	assert.Positive(t, gm.Evictions)
	metricdatatest.AssertEqual(t, upDown(otelseawall.MetricGroupKeys, "{breaker}", ip(int64(gm.Keys), pol("hosts"))),
		metricdata.Metrics{Name: otelseawall.MetricGroupKeys, Unit: "{breaker}", Data: got[otelseawall.MetricGroupKeys].Data},
		metricdatatest.IgnoreTimestamp())
	assert.LessOrEqual(t, gm.Keys, 1024)
}

// TestUnregistered: a policy registered after NewMetrics is reported, and
// one unregistered is gone from the next collection.
func TestUnregistered(t *testing.T) {
	reg, reader := instrument(t)
	for i := range 3 {
		rl, err := ratelimit.New(ratelimit.Config{Rate: 10})
		require.NoError(t, err)
		require.NoError(t, reg.Register(fmt.Sprintf("l%d", i), rl))
	}
	policies := func() []string {
		var names []string
		m, ok := collect(t, reader)[otelseawall.MetricRateLimitCalls]
		if !ok {
			return nil
		}
		for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if v, _ := p.Attributes.Value(otelseawall.AttrOutcome); v.AsString() == "admitted" {
				n, _ := p.Attributes.Value(otelseawall.AttrPolicy)
				names = append(names, n.AsString())
			}
		}
		return names
	}
	assert.ElementsMatch(t, []string{"l0", "l1", "l2"}, policies())
	require.True(t, reg.Unregister("l1"))
	assert.ElementsMatch(t, []string{"l0", "l2"}, policies())
	require.True(t, reg.Unregister("l0"))
	require.True(t, reg.Unregister("l2"))
	assert.Empty(t, policies())
	rl, err := ratelimit.New(ratelimit.Config{Rate: 10})
	require.NoError(t, err)
	require.NoError(t, reg.Register("l1", rl))
	assert.ElementsMatch(t, []string{"l1"}, policies())
}

// TestClose: after Close, nothing is reported.
func TestClose(t *testing.T) {
	reg, err := registry.New()
	require.NoError(t, err)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	m, err := otelseawall.NewMetrics(reg, otelseawall.WithMeterProvider(mp))
	require.NoError(t, err)
	rl, err := ratelimit.New(ratelimit.Config{Rate: 10})
	require.NoError(t, err)
	require.NoError(t, reg.Register("l", rl))
	assert.Contains(t, collect(t, reader), otelseawall.MetricRateLimitCalls)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	for name, got := range collect(t, reader) {
		if s, ok := got.Data.(metricdata.Sum[int64]); ok {
			assert.Empty(t, s.DataPoints, name)
		}
	}
}

// TestNilRegistry: NewMetrics refuses a nil registry, with a clear error.
func TestNilRegistry(t *testing.T) {
	_, err := otelseawall.NewMetrics(nil)
	require.EqualError(t, err, "otelseawall: NewMetrics with a nil registry")
}

// TestConcurrentCollect: collections, events, registrations and calls at
// once (for -race).
func TestConcurrentCollect(t *testing.T) {
	reg, reader := instrument(t)
	bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 100})
	require.NoError(t, err)
	require.NoError(t, reg.Register("pool", bh))
	ctx := t.Context()
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				switch w {
				case 0:
					var rm metricdata.ResourceMetrics
					_ = reader.Collect(ctx, &rm)
				case 1:
					name := fmt.Sprintf("l%d", i%10)
					if !reg.Unregister(name) {
						rl, _ := ratelimit.New(ratelimit.Config{Rate: 10})
						_ = reg.Register(name, rl)
					}
				default:
					_ = bh.Do(ctx, func(context.Context) error { return nil })
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
