package otelseawall_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/seawall-go/seawall/fallback"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/otelseawall"
	"github.com/seawall-go/seawall/timeout"
)

// sumOf returns the value of the one data point of an int64 sum or gauge.
func sumOf(t *testing.T, m metricdata.Metrics) int64 {
	t.Helper()
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		require.Len(t, d.DataPoints, 1, m.Name)
		return d.DataPoints[0].Value
	case metricdata.Gauge[int64]:
		require.Len(t, d.DataPoints, 1, m.Name)
		return d.DataPoints[0].Value
	}
	t.Fatalf("%s: %T", m.Name, m.Data)
	return 0
}

// TestTimeoutFallbackFault: the rest of the toolbox is reported too.
func TestTimeoutFallbackFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg, reader := instrument(t)
		to, err := timeout.New(timeout.Config{Timeout: time.Second})
		require.NoError(t, err)
		fb, err := fallback.New(fallback.Config[int]{Fallback: func(context.Context, error) (int, error) { return 7, nil }})
		require.NoError(t, err)
		inj, err := fault.New(fault.Config{ErrorRate: 1})
		require.NoError(t, err)
		require.NoError(t, reg.Register("accounts.timeout", to))
		require.NoError(t, reg.Register("accounts.fallback", fb))
		require.NoError(t, reg.Register("gameday", inj))
		hg, err := hedge.New(hedge.Config{Delay: 10 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, reg.Register("search.hedge", hg))
		var started atomic.Bool
		_ = hg.Do(t.Context(), func(ctx context.Context) error {
			if started.CompareAndSwap(false, true) { // the first attempt is slow: a hedge starts and wins
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})

		_ = to.Do(t.Context(), func(context.Context) error { return nil })
		_ = to.Do(t.Context(), func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		v, err := fb.Get(t.Context(), func(context.Context) (int, error) { return 0, errors.New("boom") })
		require.NoError(t, err)
		assert.Equal(t, 7, v)
		inj.Enable()
		_ = inj.Do(t.Context(), func(context.Context) error { return nil })

		got := collect(t, reader)
		for name, want := range map[string]int64{
			otelseawall.MetricTimeoutCalls: 2, otelseawall.MetricTimeoutTimedOut: 1,
			otelseawall.MetricTimeoutAbandoned: 0, otelseawall.MetricTimeoutRunning: 0,
			otelseawall.MetricFallbackFellBack: 1, otelseawall.MetricFallbackFailed: 0,
			otelseawall.MetricFaultEnabled: 1, otelseawall.MetricFaultCalls: 1,
			otelseawall.MetricFaultErrors: 1, otelseawall.MetricFaultDelays: 0,
			otelseawall.MetricHedgeCalls: 1, otelseawall.MetricHedgeHedges: 1, otelseawall.MetricHedgeWins: 1,
		} {
			assert.Equal(t, want, sumOf(t, got[name]), name)
		}
	})
}
