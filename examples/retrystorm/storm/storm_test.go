package storm

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall/internal/memnet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runAll runs each strategy of s in a synctest bubble of its own (virtual
// time), the strategies in parallel, and returns their results by
// strategy.
func runAll(t *testing.T, s Scenario, strategies []Strategy) map[Strategy]*Result {
	t.Helper()
	out := make([]*Result, len(strategies))
	t.Run("run", func(t *testing.T) {
		for i, st := range strategies {
			t.Run(st.Letter(), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					start := time.Now()
					res, err := RunStrategy(t.Context(), s, st)
					require.NoError(t, err)
					elapsed := time.Since(start)
					assert.GreaterOrEqual(t, elapsed, s.Length, "requests are sent until the end")
					assert.LessOrEqual(t, elapsed, s.Length+s.Deadline+s.AttemptTimeout,
						"the run ends when the last request has, and no later than its deadline")
					out[i] = res
				})
			})
		}
	})
	m := make(map[Strategy]*Result, len(strategies))
	for i, st := range strategies {
		require.NotNil(t, out[i], "strategy %v did not finish", st)
		m[st] = out[i]
	}
	return m
}

// overHTTP returns s run over HTTP, with httpmw on both sides, on an
// in-memory network, so that it runs in a synctest bubble.
func overHTTP(s Scenario) Scenario {
	s.HTTP = true
	s.inMemory = func() (net.Listener, func(context.Context, string, string) (net.Conn, error)) {
		ln := memnet.Listen()
		return ln, ln.Dial
	}
	return s
}

// wholeScenario skips t under the race detector. A whole scenario is 35s of
// virtual time and hundreds of thousands of attempts: the tests of whole
// scenarios take about 20s of CPU together without -race, and over 150s
// with it. The tests that hold a whole scenario to its claims therefore run
// without -race (the README's test command runs this package both ways);
// under -race, [TestShortScenarios] runs every strategy, in process and
// over HTTP, through every trigger, in scenarios of 5s.
func wholeScenario(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("a whole scenario: its claims are checked without -race; TestShortScenarios runs under -race")
	}
}

// assertSameArrivals checks that every strategy of res faced the same
// requests, and that a record was kept of each.
func assertSameArrivals(t *testing.T, res map[Strategy]*Result) {
	t.Helper()
	var first *Result
	for _, st := range AllStrategies {
		r := res[st]
		if r == nil {
			continue
		}
		if first == nil {
			first = r
		}
		assert.Equal(t, first.Metrics.Requests, r.Metrics.Requests, "%v sent the requests %v sent", st, first.Strategy)
		assert.Len(t, r.Records, first.Metrics.Requests, "%v: a record per request", st)
	}
}

func logResults(t *testing.T, s Scenario, res map[Strategy]*Result) {
	t.Helper()
	var b strings.Builder
	var list []*Result
	for _, st := range AllStrategies {
		if r := res[st]; r != nil {
			list = append(list, r)
		}
	}
	Table(&b, s, list)
	Sparklines(&b, s, list)
	t.Log("\n" + b.String())
}

// TestDefaultScenario holds the demo to its claims, on the default
// scenario (a 2× load spike for 5s), in virtual time.
func TestDefaultScenario(t *testing.T) {
	wholeScenario(t)
	t.Parallel()
	s := Default()
	res := runAll(t, s, AllStrategies)
	logResults(t, s, res)
	const maxAmp = 1.15
	a, b, c, d, e, f, g := res[NoRetry].Metrics, res[Naive].Metrics, res[Backoff].Metrics,
		res[Budget].Metrics, res[Breaker].Metrics, res[ServerSide].Metrics, res[Adaptive].Metrics

	// Every strategy faced the same requests, at the same times.
	assertSameArrivals(t, res)
	expected := s.Rate*s.Length.Seconds() + s.Rate*(s.Factor-1)*s.TriggerFor.Seconds()
	assert.InEpsilon(t, expected, a.Requests, 0.03, "Poisson arrivals at the scenario's rates")

	// (a) No retries: the spike leaves a backlog that the service works
	// off, wasting its work on requests nobody waits for, then recovers.
	assert.NotEqual(t, Never, a.Recovery, "(a) recovers")
	assert.LessOrEqual(t, a.Recovery, 10*time.Second, "(a) recovers within 10s")
	assert.InDelta(t, 1, a.AmpTrigger, 1e-9, "(a) makes one attempt per request")

	// (b) Naive retries: a metastable failure. The spike is long over,
	// yet the retries keep the service overloaded until the end.
	assert.Equal(t, Never, b.Recovery, "(b) never recovers")
	assert.LessOrEqual(t, b.LastSuccess, 0.05, "(b): at most 5%% success in the last 5s")
	assert.Greater(t, b.AmpAfter, 3.5, "(b): retries multiply the load long after the spike")

	// (c) Backoff with jitter alone spreads the retries but does not bound
	// them: it does no better.
	assert.Equal(t, Never, c.Recovery, "(c) never recovers")
	assert.Greater(t, c.AmpAfter, 3.5, "(c): backoff does not reduce the load")

	// (d) A retry budget bounds the amplification: the service recovers.
	assert.LessOrEqual(t, d.AmpTrigger, maxAmp, "(d) amplification during the spike")
	assert.LessOrEqual(t, d.AmpAfter, maxAmp, "(d) amplification after the spike")
	assert.NotEqual(t, Never, d.Recovery, "(d) recovers")
	assert.LessOrEqual(t, d.Recovery, 15*time.Second, "(d) recovers within 15s")

	// (e) A circuit breaker sheds the load at the callers: no backlog.
	assert.LessOrEqual(t, e.AmpTrigger, maxAmp, "(e) amplification during the spike")
	assert.LessOrEqual(t, e.AmpAfter, maxAmp, "(e) amplification after the spike")
	assert.NotEqual(t, Never, e.Recovery, "(e) recovers")
	assert.LessOrEqual(t, e.Recovery, 2*time.Second, "(e) recovers within 2s")
	assert.Positive(t, res[Breaker].BreakerTransitions, "(e): the breakers opened")

	// (f) Server-side protection: the service keeps serving near its
	// capacity through the spike, fast, and wastes (almost) nothing.
	assert.GreaterOrEqual(t, f.GoodputShare, 0.85, "(f) goodput during the spike, share of capacity")
	assert.Positive(t, f.P99)
	assert.LessOrEqual(t, f.P99, 200*time.Millisecond, "(f) p99 latency")
	assert.NotEqual(t, Never, f.Recovery, "(f) recovers")
	assert.LessOrEqual(t, f.Recovery, time.Second, "(f) recovers within 1s")
	assert.LessOrEqual(t, f.AmpTrigger, maxAmp, "(f) amplification during the spike")
	assert.LessOrEqual(t, f.AmpAfter, maxAmp, "(f) amplification after the spike")
	assert.LessOrEqual(t, f.Wasted, 0.01, "(f) wasted work")
	assert.Positive(t, res[ServerSide].Service.Shed, "(f): the limiter and the bulkhead shed load")
	assert.Zero(t, res[NoRetry].Service.Shed+res[NoRetry].Service.Dropped, "(a) to (e) have no server-side protection")

	// (g) No hand-sized limit: the adaptive limit at the service and the
	// throttles at the callers do at least as well as (f)'s limits, sized
	// for this service.
	assert.GreaterOrEqual(t, g.GoodputShare, 0.90, "(g) goodput during the spike")
	assert.Less(t, g.P99, s.Deadline, "(g) p99 latency")
	assert.LessOrEqual(t, g.Recovery, time.Second, "(g) recovers within 1s")
	assert.NotEqual(t, Never, g.Recovery, "(g) recovers")
	assert.LessOrEqual(t, g.AmpTrigger, maxAmp, "(g) amplification during the spike")
	assert.LessOrEqual(t, g.AmpAfter, maxAmp, "(g) amplification after the spike")
	assert.LessOrEqual(t, g.Wasted, 0.01, "(g) wasted work")
	assert.Positive(t, res[Adaptive].Service.Shed, "(g): the adaptive limit sheds load")

	// The order of the story.
	assert.Greater(t, a.Wasted, 0.2, "(a): the backlog is mostly wasted work")
	assert.Greater(t, f.Goodput, 2*e.Goodput, "(f) serves far more during the spike than (e)")
	assert.Greater(t, e.Success, d.Success)
	assert.Greater(t, f.Success, e.Success)
}

// TestNoTrigger checks the baseline: without a trigger, every strategy
// succeeds.
func TestNoTrigger(t *testing.T) {
	wholeScenario(t)
	t.Parallel()
	s := Default()
	s.Trigger = None
	res := runAll(t, s, AllStrategies)
	logResults(t, s, res)
	for _, st := range AllStrategies {
		m := res[st].Metrics
		assert.GreaterOrEqual(t, m.Success, 0.995, "%v: success without a trigger", st)
		assert.Equal(t, time.Duration(0), m.Recovery, "%v", st)
		assert.LessOrEqual(t, m.AmpAfter, 1.01, "%v: (almost) no retries", st)
		assert.Zero(t, res[st].BreakerTransitions, "%v: no breaker opens", st)
	}
}

// TestSlowdown checks the other trigger: the service's capacity halves for
// 5s. The unprotected callers with naive retries never recover; the
// protected service keeps serving all it can.
func TestSlowdown(t *testing.T) {
	wholeScenario(t)
	t.Parallel()
	s := Default()
	s.Trigger = Slowdown
	res := runAll(t, s, []Strategy{NoRetry, Naive, ServerSide})
	logResults(t, s, res)
	assert.NotEqual(t, Never, res[NoRetry].Metrics.Recovery)
	assert.Equal(t, Never, res[Naive].Metrics.Recovery)
	f := res[ServerSide].Metrics
	assert.GreaterOrEqual(t, f.GoodputShare, 0.85, "(f) serves near the reduced capacity")
	assert.LessOrEqual(t, f.Recovery, time.Second)
}

// TestCancel checks that a cancelled run returns promptly with the
// context's error, after joining every goroutine it started. It cancels
// the runs 2s into the spike, in the thick of the storm, as the default
// scenario is at 12s, after a warm-up of 1s instead of 10s: the service
// settles into its steady state within a second of warm-up.
func TestCancel(t *testing.T) {
	t.Parallel()
	s := Default()
	s.TriggerAt = time.Second
	cancelAt := s.TriggerAt + 2*time.Second
	for _, st := range AllStrategies {
		t.Run(st.Letter(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), cancelAt)
				defer cancel()
				start := time.Now()
				_, err := RunStrategy(ctx, s, st)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				assert.LessOrEqual(t, time.Since(start), cancelAt+s.Deadline, "%v", st)
			})
		})
	}
}

func TestValidate(t *testing.T) {
	require.NoError(t, Default().Validate())
	for name, mod := range map[string]func(*Scenario){
		"workers":  func(s *Scenario) { s.Workers = 0 },
		"service":  func(s *Scenario) { s.ServiceTime = 0 },
		"callers":  func(s *Scenario) { s.Callers = 0 },
		"rate":     func(s *Scenario) { s.Rate = -1 },
		"trigger":  func(s *Scenario) { s.Trigger = "flood" },
		"factor":   func(s *Scenario) { s.Factor = 0.5 },
		"window":   func(s *Scenario) { s.TriggerFor = time.Hour },
		"deadline": func(s *Scenario) { s.Deadline = 0 },
		"attempts": func(s *Scenario) { s.MaxAttempts = 0 },
		"speed":    func(s *Scenario) { s.Speed = 0 },
		"slack":    func(s *Scenario) { s.Slack = time.Second },
		"delay":    func(s *Scenario) { s.Policies.Delay = 0 },
	} {
		s := Default()
		mod(&s)
		assert.Error(t, s.Validate(), name)
		_, err := RunStrategy(t.Context(), s, NoRetry)
		assert.Error(t, err, name)
	}
	s := Default()
	s.Policies.Breaker.FailureRate = 2
	_, err := RunStrategy(t.Context(), s, Breaker)
	assert.ErrorContains(t, err, "FailureRate", "a bad policy configuration is reported")
}

func TestParseStrategies(t *testing.T) {
	got, err := ParseStrategies("all")
	require.NoError(t, err)
	assert.Equal(t, AllStrategies, got)
	got, err = ParseStrategies("a,d,f")
	require.NoError(t, err)
	assert.Equal(t, []Strategy{NoRetry, Budget, ServerSide}, got)
	got, err = ParseStrategies("fa")
	require.NoError(t, err)
	assert.Equal(t, []Strategy{ServerSide, NoRetry}, got)
	for _, bad := range []string{"", "h", "a,x", ","} {
		_, err := ParseStrategies(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "e + circuit breaker", Breaker.String())
}

// TestMetrics checks the metrics on hand-made records.
func TestMetrics(t *testing.T) {
	s := Default()
	s.TriggerAt, s.TriggerFor, s.Length = time.Second, time.Second, 4*time.Second
	var recs []Record
	for ms := 0; ms < 4000; ms += 10 {
		sent := time.Duration(ms) * time.Millisecond
		r := Record{Sent: sent, Latency: 20 * time.Millisecond, Attempts: 1, OK: true}
		switch {
		case sent >= time.Second && sent < 2*time.Second: // the trigger: half fail, after 3 attempts
			r.OK = ms%20 == 0
			if !r.OK {
				r.Attempts = 3
			}
		case sent >= 2*time.Second && sent < 2500*time.Millisecond: // recovering: a tenth fail
			r.OK = ms%100 != 0
		}
		recs = append(recs, r)
	}
	res := &Result{Records: recs, Service: ServiceStats{Busy: 10 * time.Second, Wasted: time.Second}}
	res.Timeline = s.timeline(recs)
	m := s.metrics(res)
	assert.Equal(t, 400, m.Requests)
	assert.InDelta(t, 2.0, m.AmpTrigger, 1e-9)
	assert.InDelta(t, 1.0, m.AmpAfter, 1e-9)
	assert.InDelta(t, 50, m.Goodput, 1e-9)
	assert.InDelta(t, 0.05, m.GoodputShare, 1e-9)
	assert.Equal(t, 20*time.Millisecond, m.P99)
	assert.InDelta(t, 0.1, m.Wasted, 1e-9)
	// The bins of 2.0s to 2.4s have 10% failures: the windows starting
	// at up to 2.2s have 3 failures or more in 50 requests (< 95%
	// success); those from 2.3s on, 2 or fewer.
	assert.Equal(t, 300*time.Millisecond, m.Recovery)
	assert.InDelta(t, 345.0/400, m.LastSuccess, 1e-9, "the last 5s are the whole run")

	// A failure in the last window: never.
	recs[len(recs)-1].OK = false
	recs[len(recs)-2].OK = false
	recs[len(recs)-3].OK = false
	res.Timeline = s.timeline(recs)
	assert.Equal(t, Never, s.recovery(res.Timeline))

	assert.Equal(t, time.Duration(0), percentile(nil, 0.99))
	d := []time.Duration{5, 1, 4, 2, 3}
	assert.Equal(t, time.Duration(5), percentile(d, 0.99))
	assert.Equal(t, time.Duration(3), percentile(d, 0.5))
}

// TestReport checks the outputs: the table and the sparklines name every
// strategy, the SVG is well-formed XML with a line per strategy and the
// trigger shaded, and a Result encodes to JSON.
func TestReport(t *testing.T) {
	s := Default()
	s.TriggerAt, s.TriggerFor, s.Length = 2*time.Second, time.Second, 5*time.Second
	var list []*Result
	synctest.Test(t, func(t *testing.T) {
		res, err := Run(t.Context(), s, []Strategy{NoRetry, ServerSide})
		require.NoError(t, err)
		list = res
	})
	require.Len(t, list, 2)
	var out bytes.Buffer
	Describe(&out, s, AllStrategies)
	Table(&out, s, list)
	Legend(&out, s)
	Sparklines(&out, s, list)
	text := out.String()
	for _, st := range AllStrategies {
		assert.Contains(t, text, st.String())
	}
	assert.Contains(t, text, "time to")

	var svg bytes.Buffer
	require.NoError(t, SVG(&svg, s, list))
	dec := xml.NewDecoder(&svg)
	polylines, shaded := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "polyline":
				polylines++
			case "rect":
				for _, a := range se.Attr {
					if a.Name.Local == "fill" && a.Value == "#f4cccc" {
						shaded++
					}
				}
			}
		}
	}
	assert.Equal(t, 2, polylines, "a line per strategy")
	assert.Equal(t, 1, shaded, "the trigger is shaded")

	js, err := json.Marshal(list[0])
	require.NoError(t, err)
	assert.Contains(t, string(js), `"strategy":"a"`)
	assert.Contains(t, string(js), `"ampTrigger"`)
}

// TestDefaultScenarioOverHTTP runs strategies (c) and (f) of the default
// scenario over HTTP, with httpmw on both sides, on an in-memory network
// inside synctest bubbles: virtual time, so the claims are checked over
// the wire without a busy machine's noise.
func TestDefaultScenarioOverHTTP(t *testing.T) {
	wholeScenario(t)
	t.Parallel()
	s := overHTTP(Default())
	res := runAll(t, s, []Strategy{Backoff, ServerSide, Adaptive})
	logResults(t, s, res)
	c, f, g := res[Backoff].Metrics, res[ServerSide].Metrics, res[Adaptive].Metrics
	assert.Greater(t, c.AmpTrigger, 3.0, "(c) multiplies the load")
	assert.Equal(t, Never, c.Recovery, "(c) does not recover")
	assert.LessOrEqual(t, f.AmpTrigger, 1.15)
	assert.Greater(t, f.GoodputShare, 0.85, "(f) serves near its capacity through the spike")
	assert.Less(t, f.Wasted, 0.01)
	assert.Greater(t, f.Success, 0.85)
	assert.LessOrEqual(t, g.AmpTrigger, 1.15, "(g) over HTTP")
	assert.LessOrEqual(t, g.AmpAfter, 1.15, "(g) over HTTP")
	assert.GreaterOrEqual(t, g.GoodputShare, 0.90, "(g) serves near its capacity over HTTP")
	assert.LessOrEqual(t, g.Recovery, time.Second, "(g) recovers within 1s over HTTP")
	assert.NotEqual(t, Never, g.Recovery)
}

// TestShortScenarios runs the scenarios of the tests above, shortened to
// 5s (a warm-up of 1s, a trigger of 2s, 2s after it), with the same
// strategies, in process and over HTTP: every goroutine, policy and code
// path of the whole runs (retries, budgets running out, breakers opening
// and closing, the limiter and the bulkhead shedding, httpmw on both
// sides) in a few seconds of CPU, so that the race detector sees them all
// (see [wholeScenario]). It checks what holds whatever the length, and
// that each defence was at work; the claims are the whole scenarios'.
func TestShortScenarios(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		trigger    Trigger
		http       bool
		strategies []Strategy
	}{
		{"spike", Spike, false, AllStrategies},
		{"none", None, false, AllStrategies},
		{"slowdown", Slowdown, false, []Strategy{NoRetry, Naive, ServerSide, Adaptive}},
		{"spike over HTTP", Spike, true, []Strategy{Backoff, ServerSide, Adaptive}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Default()
			s.Trigger = tc.trigger
			s.TriggerAt, s.TriggerFor, s.Length = time.Second, 2*time.Second, 5*time.Second
			if tc.http {
				s = overHTTP(s)
			}
			res := runAll(t, s, tc.strategies)
			logResults(t, s, res)
			assertSameArrivals(t, res)
			expected := s.Rate * s.Length.Seconds()
			if s.Trigger == Spike {
				expected += s.Rate * (s.Factor - 1) * s.TriggerFor.Seconds()
			}
			assert.InEpsilon(t, expected, res[tc.strategies[0]].Metrics.Requests, 0.03, "Poisson arrivals at the scenario's rates")

			for _, st := range tc.strategies {
				r := res[st]
				if st == NoRetry {
					assert.InDelta(t, 1, r.Metrics.AmpTrigger, 1e-9, "(a) makes one attempt per request")
					assert.InDelta(t, 1, r.Metrics.AmpAfter, 1e-9, "(a) makes one attempt per request")
				}
				if !st.protected() {
					assert.Zero(t, r.Service.Shed+r.Service.Dropped, "%v has no server-side protection", st)
				}
				if tc.http {
					assert.GreaterOrEqual(t, r.AttemptsSent, uint64(r.Metrics.Requests), "%v: every attempt is counted", st)
				}
				if s.Trigger == None {
					assert.GreaterOrEqual(t, r.Metrics.Success, 0.995, "%v: success without a trigger", st)
					assert.Zero(t, r.BreakerTransitions, "%v: no breaker opens", st)
					continue
				}
				// Each defence was at work.
				if st == NoRetry {
					assert.Positive(t, r.Service.Abandoned, "(a): the service works for callers that left")
				}
				if st != NoRetry {
					assert.Positive(t, r.Retries, "%v retries", st)
				}
				if st.budgeted() {
					assert.Positive(t, r.BudgetExhausted, "%v: the retry budget runs out", st)
				}
				if st.breaks() && !st.protected() { // the service's refusals are shedding, not failure
					assert.Positive(t, r.BreakerTransitions, "%v: the breakers open", st)
				}
				if st.protected() {
					assert.Positive(t, r.Service.Shed, "%v: the service's protection sheds load", st)
				}
			}
		})
	}
}
