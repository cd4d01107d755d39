package registry

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/retry"
)

// recorder is a slog.Handler that keeps the records it is given.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recorder) WithGroup(string) slog.Handler            { return h }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *recorder) all() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.recs...)
}

func TestLogBreakerTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h recorder
		r := mustNew(t, WithLogger(slog.New(&h)))
		b := must[*breaker.Breaker](t)(breaker.New(breaker.Config{FailureRate: 0.5, CountWindow: 10, OpenDuration: time.Second}))
		require.NoError(t, r.Register("accounts", b))
		ok := func(context.Context) error { return nil }
		fail := func(context.Context) error { return errBoom }
		for range 100 {
			require.NoError(t, b.Do(t.Context(), ok))
		}
		assert.Empty(t, h.all(), "never one record per call")
		for range 10 {
			_ = b.Do(t.Context(), fail)
		}
		bubble.Sleep(time.Second)
		require.NoError(t, b.Do(t.Context(), ok)) // the probe closes it

		recs := h.all()
		require.Len(t, recs, 3)
		assert.Equal(t, record{level: slog.LevelWarn, msg: "seawall: breaker closed → open", attrs: map[string]any{
			"seawall.policy": "accounts", "seawall.policy.kind": "breaker",
			"seawall.breaker.from_state": "closed", "seawall.breaker.to_state": "open",
			"seawall.breaker.cause":                "failure-rate",
			"seawall.breaker.consecutive_failures": uint64(0),
			"seawall.breaker.window.calls":         uint64(10), "seawall.breaker.window.failures": uint64(5),
			"seawall.breaker.window.slow_calls": uint64(0),
		}}, recs[0], "which rule tripped, with the counts that tripped it")
		assert.Equal(t, record{level: slog.LevelInfo, msg: "seawall: breaker open → half-open", attrs: map[string]any{
			"seawall.policy": "accounts", "seawall.policy.kind": "breaker",
			"seawall.breaker.from_state": "open", "seawall.breaker.to_state": "half-open",
			"seawall.breaker.cause": "open-duration-elapsed",
		}}, recs[1])
		assert.Equal(t, "seawall: breaker half-open → closed", recs[2].msg)
		assert.Equal(t, "probes-succeeded", recs[2].attrs["seawall.breaker.cause"])
	})
}

func TestLogGroupKey(t *testing.T) {
	var h recorder
	r := mustNew(t, WithLogger(slog.New(&h)))
	g := must[*breaker.Group](t)(breaker.NewGroup(breaker.Config{}, 0))
	require.NoError(t, r.Register("hosts", g))
	g.Get("db-1").ForceOpen()
	recs := h.all()
	require.Len(t, recs, 1)
	assert.Equal(t, "db-1", recs[0].attrs["seawall.breaker.key"])
	assert.Equal(t, "force-open", recs[0].attrs["seawall.breaker.cause"])
	assert.Equal(t, slog.LevelWarn, recs[0].level)
}

func TestLogBudgetEpisode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h recorder
		r := mustNew(t, WithLogger(slog.New(&h)))
		rt := must[*retry.Retry](t)(retry.New(retry.Config{MaxAttempts: 2, Delay: time.Millisecond}))
		require.NoError(t, r.Register("accounts.retry", rt))
		for range 50 {
			_ = rt.Do(t.Context(), func(context.Context) error { return errBoom })
		}
		recs := h.all()
		require.Len(t, recs, 1, "one record for the onset, however often the budget flickers")
		assert.Equal(t, slog.LevelWarn, recs[0].level)
		assert.Equal(t, "accounts.retry.budget", recs[0].attrs["seawall.policy"])
		refused := rt.Metrics().Budget.Exhausted

		bubble.Sleep(retry.DefaultBudgetWindow)
		rt.Metrics() // a collector's visit ends the episode
		recs = h.all()
		require.Len(t, recs, 2)
		assert.Equal(t, "seawall: retry budget allows retries again", recs[1].msg)
		assert.Equal(t, refused, recs[1].attrs["seawall.retry.budget.refused"], "the retries refused in the episode")
		assert.Less(t, retry.DefaultBudgetWindow, recs[1].attrs["seawall.retry.budget.exhausted_for"].(time.Duration))
	})
}

func TestLogAdaptiveThreshold(t *testing.T) {
	for _, c := range []struct {
		threshold float64
		wantFew   bool
	}{{0.01, false}, {0.5, true}} {
		synctest.Test(t, func(t *testing.T) {
			var h recorder
			r := mustNew(t, WithLogger(slog.New(&h)), WithLimitChangeThreshold(c.threshold))
			l := must[*adaptive.Limiter](t)(adaptive.New(adaptive.Config{InitialLimit: 40, NoQueue: true}))
			require.NoError(t, r.Register("accounts.limit", l))
			var changes int
			defer r.Watch(func(e Event) {
				if e.Type == LimitChanged {
					changes++
				}
			})()
			for i := range 4000 {
				d := time.Millisecond
				if i > 1000 {
					d = 8 * time.Millisecond
				}
				_ = l.Do(t.Context(), func(context.Context) error { bubble.Sleep(d); return nil })
			}
			recs := h.all()
			require.NotEmpty(t, recs)
			for i, rec := range recs {
				prev, now := rec.attrs["seawall.adaptive.limit.previous"].(int64), rec.attrs["seawall.adaptive.limit"].(int64)
				assert.GreaterOrEqual(t, float64(max(now-prev, prev-now)), c.threshold*float64(prev), "record %d: %d → %d", i, prev, now)
				if i > 0 {
					assert.Equal(t, recs[i-1].attrs["seawall.adaptive.limit"], rec.attrs["seawall.adaptive.limit.previous"], "from the value last logged")
				}
			}
			if c.wantFew {
				assert.Less(t, len(recs), changes, "a threshold of %v logs fewer records than changes", c.threshold)
			}
		})
	}
}
