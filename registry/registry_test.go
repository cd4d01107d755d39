package registry

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fallback"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
	"github.com/seawall-go/seawall/timeout"
)

var (
	errBoom          = errors.New("boom")
	seawallPermanent = seawall.Permanent(errBoom)
)

func mustNew(t *testing.T, opts ...Option) *Registry {
	t.Helper()
	r, err := New(opts...)
	require.NoError(t, err)
	return r
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		require.NoError(t, err)
		return v
	}
}

// onePolicyOfEach returns one policy of every kind, by kind.
func onePolicyOfEach(t *testing.T) map[Kind]any {
	return map[Kind]any{
		KindBreaker:      must[*breaker.Breaker](t)(breaker.New(breaker.Config{})),
		KindBreakerGroup: must[*breaker.Group](t)(breaker.NewGroup(breaker.Config{}, 0)),
		KindRetry:        must[*retry.Retry](t)(retry.New(retry.Config{})),
		KindBudget:       must[*retry.Budget](t)(retry.NewBudget(retry.BudgetConfig{})),
		KindBulkhead:     must[*bulkhead.Bulkhead](t)(bulkhead.New(bulkhead.Config{})),
		KindAdaptive:     must[*adaptive.Limiter](t)(adaptive.New(adaptive.Config{})),
		KindRateLimit:    must[*ratelimit.Limiter](t)(ratelimit.New(ratelimit.Config{Rate: 10})),
		KindKeyedLimit:   must[*ratelimit.Keyed](t)(ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 10}})),
		KindThrottle:     must[*throttle.Throttle](t)(throttle.New(throttle.Config{})),
		KindFault:        must[*fault.Injector](t)(fault.New(fault.Config{})),
		KindTimeout:      must[*timeout.Timeout](t)(timeout.New(timeout.Config{Timeout: time.Second})),
		KindHedge:        must[*hedge.Hedge](t)(hedge.New(hedge.Config{})),
		KindFallback: must[*fallback.Fallback[int]](t)(fallback.New(fallback.Config[int]{
			Fallback: func(context.Context, error) (int, error) { return 0, nil }})),
	}
}

func TestRegisterEveryKind(t *testing.T) {
	r := mustNew(t)
	for k, p := range onePolicyOfEach(t) {
		require.NoError(t, r.Register("p."+string(k), p))
	}
	var names []string
	var kinds []Kind
	r.Range(func(p Policy) bool {
		names = append(names, p.Name)
		kinds = append(kinds, p.Kind)
		return true
	})
	// The retry brought its budget along.
	assert.Equal(t, []string{"p.adaptive", "p.breaker", "p.breaker_group", "p.bulkhead", "p.fallback", "p.fault", "p.hedge", "p.keyed_ratelimit",
		"p.ratelimit", "p.retry", "p.retry.budget", "p.retry_budget", "p.throttle", "p.timeout"}, names, "in the order of their names")
	assert.Equal(t, []Kind{KindAdaptive, KindBreaker, KindBreakerGroup, KindBulkhead, KindFallback, KindFault, KindHedge, KindKeyedLimit,
		KindRateLimit, KindRetry, KindBudget, KindBudget, KindThrottle, KindTimeout}, kinds)
	assert.Equal(t, 14, r.Len())

	s := r.Snapshot()
	require.Len(t, s.Policies, 14)
	for _, ps := range s.Policies {
		set := 0
		for _, f := range []bool{ps.Breaker != nil, ps.BreakerGroup != nil, ps.Retry != nil, ps.Budget != nil,
			ps.Bulkhead != nil, ps.Adaptive != nil, ps.RateLimit != nil, ps.Throttle != nil, ps.Fault != nil, ps.Timeout != nil, ps.Fallback != nil, ps.Hedge != nil} {
			if f {
				set++
			}
		}
		assert.Equal(t, 1, set, "%s: exactly one metrics field", ps.Name)
	}
}

func TestRegisterRefuses(t *testing.T) {
	r := mustNew(t)
	b := must[*breaker.Breaker](t)(breaker.New(breaker.Config{}))
	require.NoError(t, r.Register("accounts", b))
	other := must[*breaker.Breaker](t)(breaker.New(breaker.Config{}))
	var nilBreaker *breaker.Breaker
	for _, c := range []struct {
		name   string
		policy any
		want   string
	}{
		{"", other, "registry: empty name"},
		{strings.Repeat("a", MaxNameLen+1), other, "129 bytes long, more than 128"},
		{"has space", other, `name "has space" has ' ' at byte 3`},
		{".leading", other, `has '.' at byte 0`},
		{"accounts", other, `name "accounts" is taken by a breaker`},
		{"again", b, `this breaker is registered already, as "accounts"`},
		{"nil", nilBreaker, "registry: cannot register a nil *breaker.Breaker"},
		{"nil2", nil, "cannot register a <nil>: not a seawall policy"},
		{"int", 3, "cannot register a int: not a seawall policy"},
	} {
		err := r.Register(c.name, c.policy)
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.want)
		}
	}
	assert.Equal(t, 1, r.Len(), "a refused registration changes nothing")

	r2 := mustNew(t)
	err := r2.Register("accounts", b)
	assert.EqualError(t, err, `registry: this breaker is registered already, in another registry, as "accounts"`)

	assert.NoError(t, ValidName(strings.Repeat("a", MaxNameLen)))
	assert.NoError(t, ValidName("Accounts.retry_budget-2"))
}

func TestUnregister(t *testing.T) {
	r := mustNew(t)
	rt := must[*retry.Retry](t)(retry.New(retry.Config{}))
	require.NoError(t, r.Register("accounts.retry", rt))
	_, ok := r.Lookup("accounts.retry.budget")
	require.True(t, ok)

	assert.True(t, r.Unregister("accounts.retry"))
	assert.False(t, r.Unregister("accounts.retry"), "once")
	assert.Equal(t, 0, r.Len(), "the budget went with its retry")

	// Free to join another registry now.
	r2 := mustNew(t)
	require.NoError(t, r2.Register("accounts.retry", rt))
	p, ok := r2.Lookup("accounts.retry")
	require.True(t, ok)
	assert.Equal(t, Policy{Name: "accounts.retry", Kind: KindRetry, Value: rt}, p)
}

func TestSharedBudgetRegisteredOnce(t *testing.T) {
	r := mustNew(t)
	b := must[*retry.Budget](t)(retry.NewBudget(retry.BudgetConfig{}))
	r1 := must[*retry.Retry](t)(retry.New(retry.Config{SharedBudget: b}))
	r2 := must[*retry.Retry](t)(retry.New(retry.Config{SharedBudget: b}))
	require.NoError(t, r.Register("a", r1))
	require.NoError(t, r.Register("b", r2))
	_, ok := r.Lookup("a.budget")
	assert.True(t, ok)
	_, ok = r.Lookup("b.budget")
	assert.False(t, ok, "the shared budget is registered once")
}

func TestNewRefuses(t *testing.T) {
	_, err := New(WithLogger(nil))
	assert.EqualError(t, err, "registry: WithLogger(nil)")
	_, err = New(WithLimitChangeThreshold(0))
	assert.EqualError(t, err, "registry: WithLimitChangeThreshold(0) out of range (0, 10]")
}

// events collects a registry's events.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
}

func (e *events) all() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.ev...)
}

func TestWatchBreakerAndGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t)
		b := must[*breaker.Breaker](t)(breaker.New(breaker.Config{ConsecutiveFailures: 2, OpenDuration: time.Second}))
		g := must[*breaker.Group](t)(breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1}, 0))
		require.NoError(t, r.Register("accounts", b))
		require.NoError(t, r.Register("hosts", g))
		var got events
		stop := r.Watch(got.add)

		fail := func(context.Context) error { return errBoom }
		for range 2 {
			_ = b.Do(t.Context(), fail)
		}
		_ = g.Do(t.Context(), "db-1", fail)
		ev := got.all()
		require.Len(t, ev, 2)
		assert.Equal(t, "accounts", ev[0].Policy)
		assert.Equal(t, KindBreaker, ev[0].Kind)
		assert.Equal(t, StateChanged, ev[0].Type)
		assert.Equal(t, breaker.StateChange{From: breaker.Closed, To: breaker.Open, Cause: breaker.CauseConsecutiveFailures,
			Counts: breaker.Counts{ConsecutiveFailures: 2}}, ev[0].StateChange)
		assert.Equal(t, time.Now(), ev[0].Time)
		assert.Equal(t, "hosts", ev[1].Policy)
		assert.Equal(t, "db-1", ev[1].StateChange.Name, "a group's event names the key")

		stop()
		stop() // idempotent
		b.Reset()
		assert.Len(t, got.all(), 2, "no events after stop")
	})
}

func TestWatchWaitsRetriesBudgetAndLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t)
		bh := must[*bulkhead.Bulkhead](t)(bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 1}))
		rt := must[*retry.Retry](t)(retry.New(retry.Config{MaxAttempts: 3, Delay: 10 * time.Millisecond, Jitter: retry.NoJitter,
			Budget: retry.BudgetConfig{Ratio: 0.1}}))
		require.NoError(t, r.Register("db", bh))
		require.NoError(t, r.Register("accounts.retry", rt))
		var got events
		defer r.Watch(got.add)()

		// A call waits 50ms for the bulkhead.
		require.True(t, bh.TryAcquire())
		go func() {
			bubble.Sleep(50 * time.Millisecond)
			bh.Release()
		}()
		require.NoError(t, bh.Acquire(t.Context()))
		bh.Release()

		// A call that fails once, then succeeds, after a 10ms delay.
		n := 0
		require.NoError(t, rt.Do(t.Context(), func(context.Context) error {
			if n++; n == 1 {
				return errBoom
			}
			return nil
		}))
		ev := got.all()
		require.Len(t, ev, 2)
		assert.Equal(t, Event{Time: ev[0].Time, Policy: "db", Kind: KindBulkhead, Type: Waited, Duration: 50 * time.Millisecond}, ev[0])
		assert.Equal(t, Event{Time: ev[1].Time, Policy: "accounts.retry", Kind: KindRetry, Type: CallRetried,
			Duration: 10 * time.Millisecond, Retries: 1}, ev[1])

		// Every call fails: the budget (10% of requests, + the floor while
		// healthy) runs dry, and later allows retries again.
		for range 30 {
			_ = rt.Do(t.Context(), func(context.Context) error { return errBoom })
		}
		var dry, gaveUp int
		for _, e := range got.all() {
			switch {
			case e.Type == BudgetExhausted:
				dry++
				assert.Equal(t, "accounts.retry.budget", e.Policy)
			case e.Type == CallRetried && e.Reason != "":
				gaveUp++
			}
		}
		assert.Equal(t, 1, dry, "the onset is reported once, though the budget allows a retry now and then")
		assert.Positive(t, gaveUp)
		bubble.Sleep(10 * time.Second)
		for range 20 {
			require.NoError(t, rt.Do(t.Context(), func(context.Context) error { return nil }))
		}
		n = 0
		require.NoError(t, rt.Do(t.Context(), func(context.Context) error {
			if n++; n == 1 {
				return errBoom
			}
			return nil
		}))
		last := got.all()
		assert.Equal(t, BudgetRestored, last[len(last)-2].Type, "the end is reported, a Window after the last refusal")
		assert.Equal(t, CallRetried, last[len(last)-1].Type)
	})
}

func TestWatchAdaptiveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t)
		l := must[*adaptive.Limiter](t)(adaptive.New(adaptive.Config{InitialLimit: 20, NoQueue: true}))
		require.NoError(t, r.Register("accounts.limit", l))
		var got events
		defer r.Watch(got.add)()
		// Latency grows fourfold: the limit falls.
		for i := range 4000 {
			d := time.Millisecond
			if i > 1000 {
				d = 4 * time.Millisecond
			}
			_ = l.Do(t.Context(), func(context.Context) error { bubble.Sleep(d); return nil })
		}
		var changes []Event
		for _, e := range got.all() {
			if e.Type == LimitChanged {
				changes = append(changes, e)
			}
		}
		require.NotEmpty(t, changes)
		for i, e := range changes {
			assert.NotEqual(t, e.From, e.To)
			if i > 0 {
				assert.Equal(t, changes[i-1].To, e.From, "changes chain")
			}
		}
		assert.Equal(t, math.Round(l.Metrics().Estimate), float64(changes[len(changes)-1].To), "the last change is the limit now")
	})
}

// TestSnapshotJSONRoundTrip: a script reading the status page's JSON into
// a Snapshot gets what the registry took.
func TestSnapshotJSONRoundTrip(t *testing.T) {
	r := mustNew(t)
	for k, p := range onePolicyOfEach(t) {
		require.NoError(t, r.Register("p."+string(k), p))
	}
	p, _ := r.Lookup("p.breaker")
	_ = p.Value.(*breaker.Breaker).Do(t.Context(), func(context.Context) error { return errBoom })
	p.Value.(*breaker.Breaker).ForceOpen()
	p, _ = r.Lookup("p.breaker_group")
	p.Value.(*breaker.Group).Get("db-1").ForceOpen()
	p, _ = r.Lookup("p.retry")
	_ = p.Value.(*retry.Retry).Do(t.Context(), func(context.Context) error { return seawallPermanent })

	s := r.Snapshot()
	out, err := json.Marshal(s)
	require.NoError(t, err)
	var back Snapshot
	require.NoError(t, json.Unmarshal(out, &back))
	assert.True(t, s.Time.Equal(back.Time))
	s.Time = back.Time // JSON carries neither the monotonic reading nor the *time.Location
	assert.Equal(t, s, back)
	assert.Equal(t, []breaker.Member{{Key: "db-1", State: breaker.ForcedOpen}}, back.Policies[2].BreakerGroup.Tripped)
}

func TestRetryBudgetNameTaken(t *testing.T) {
	r := mustNew(t)
	other := must[*retry.Budget](t)(retry.NewBudget(retry.BudgetConfig{}))
	require.NoError(t, r.Register("accounts.retry.budget", other))
	rt := must[*retry.Retry](t)(retry.New(retry.Config{}))
	err := r.Register("accounts.retry", rt)
	assert.EqualError(t, err, `registry: the retry's budget: name "accounts.retry.budget" is taken by a retry_budget`)
	err = r.RegisterAll(Policy{Name: "accounts.retry", Value: rt})
	assert.ErrorContains(t, err, `registry: the retry's budget: registry: name "accounts.retry.budget" is taken`)
	assert.Equal(t, 1, r.Len(), "nothing registered")
	_, ok := r.NameOf(rt)
	assert.False(t, ok)
	long := strings.Repeat("a", MaxNameLen-3)
	assert.ErrorContains(t, r.Register(long, rt), "the retry's budget: registry: name")
}

func TestUnder(t *testing.T) {
	b := must[*breaker.Breaker](t)(breaker.New(breaker.Config{}))
	var none *retry.Retry
	var allower interface{ Allow() bool } // nil interface
	assert.Equal(t, []Policy{{Name: "api.breaker", Value: b}},
		Under("api", Part{".breaker", b}, Part{".retry", none}, Part{".limit", allower}, Part{".other", 3}),
		"nil and foreign values are left out")
}
