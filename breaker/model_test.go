package breaker

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/require"
)

// refBreaker is a plain, mutex-based reference implementation of the
// documented behaviour, written for clarity rather than speed: it keeps every
// call of the closed period in a slice. The model test drives it and the
// lock-free Breaker through the same random traces.
type refBreaker struct {
	mu      sync.Mutex
	cfg     Config
	epoch   time.Time
	state   State
	gen     int
	consec  int
	calls   []refCall // the closed period's counted calls, oldest first
	trips   int
	until   time.Duration
	probes  int // in flight
	succ    int // successful probes
	metrics Metrics
}

type refCall struct {
	at           time.Duration
	failed, slow bool
}

type refPermit struct {
	state State
	gen   int
	start time.Duration
}

func newRef(cfg Config) *refBreaker {
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic(err)
	}
	return &refBreaker{cfg: cfg, epoch: time.Now()}
}

func (r *refBreaker) now() time.Duration { return time.Since(r.epoch) }

func (r *refBreaker) setState(st State) {
	if st != r.state {
		r.metrics.Transitions++
		r.metrics.Moves[r.state][st]++
	}
	r.state = st
	r.gen++
	switch st {
	case Open:
		r.trips++
		r.until = r.now() + r.openDuration(r.trips)
	case HalfOpen:
		r.probes, r.succ = 1, 0
	case Closed:
		r.calls, r.consec, r.trips = nil, 0, 0
	}
}

// openDuration returns the open duration of the n-th consecutive trip.
func (r *refBreaker) openDuration(n int) time.Duration {
	d := float64(r.cfg.OpenDuration)
	for range n - 1 {
		d *= r.cfg.OpenBackoff
	}
	return time.Duration(min(d, float64(r.cfg.MaxOpenDuration)))
}

// hint returns the retry-after hint a rejection carries: while open, the
// time left in the open period; while half-open, the open duration a failed
// probe would start; none when forced open.
func (r *refBreaker) hint() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case Open:
		return max(r.until-r.now(), 0), true
	case HalfOpen:
		return r.openDuration(r.trips + 1), true
	}
	return 0, false
}

func (r *refBreaker) allow() (refPermit, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case Open:
		if r.now() < r.until {
			r.metrics.Rejections++
			return refPermit{}, false
		}
		r.setState(HalfOpen)
		return refPermit{HalfOpen, r.gen, r.now()}, true
	case HalfOpen:
		if r.probes >= r.cfg.HalfOpenProbes {
			r.metrics.Rejections++
			return refPermit{}, false
		}
		r.probes++
	case ForcedOpen:
		r.metrics.Rejections++
		return refPermit{}, false
	}
	return refPermit{r.state, r.gen, r.now()}, true
}

func (r *refBreaker) done(p refPermit, o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	current := p.state == r.state && p.gen == r.gen
	if o == Ignore {
		r.metrics.Ignored++
		if current && p.state == HalfOpen && r.probes > 0 {
			r.probes--
		}
		return
	}
	failed := o != Success
	slow := r.cfg.SlowCallThreshold > 0 && r.now()-p.start >= r.cfg.SlowCallThreshold
	if failed {
		r.metrics.Failures++
	} else {
		r.metrics.Successes++
	}
	if slow {
		r.metrics.SlowCalls++
	}
	if !current {
		return
	}
	switch p.state {
	case HalfOpen:
		if failed || slow {
			r.setState(Open)
			return
		}
		r.probes--
		r.succ++
		if r.succ >= r.cfg.HalfOpenSuccesses {
			r.setState(Closed)
		}
		return
	case Disabled:
		return
	}
	// Closed.
	r.calls = append(r.calls, refCall{r.now(), failed, slow})
	if !failed {
		r.consec = 0
		if !slow {
			return // a fast success never trips
		}
	} else {
		r.consec++
		if r.cfg.ConsecutiveFailures > 0 && r.consec >= r.cfg.ConsecutiveFailures {
			r.setState(Open)
			return
		}
	}
	if r.rateTrips() {
		r.setState(Open)
	}
}

// rateTrips evaluates the rate rules over the window, straight from the
// documentation.
func (r *refBreaker) rateTrips() bool {
	if r.cfg.FailureRate == 0 && r.cfg.SlowCallRate == 0 {
		return false
	}
	window := r.calls
	if n := r.cfg.CountWindow; n > 0 && len(window) > n {
		window = window[len(window)-n:]
	}
	if r.cfg.TimeWindow > 0 {
		width := r.cfg.TimeWindow / time.Duration(r.cfg.TimeWindowBuckets)
		oldest := r.now()/width - time.Duration(r.cfg.TimeWindowBuckets) + 1
		var in []refCall
		for _, c := range window {
			if c.at/width >= oldest {
				in = append(in, c)
			}
		}
		window = in
	}
	var failures, slow int
	for _, c := range window {
		if c.failed {
			failures++
		}
		if c.slow {
			slow++
		}
	}
	n := len(window)
	if n == 0 || n < r.cfg.MinimumCalls {
		return false
	}
	return r.cfg.FailureRate > 0 && float64(failures)/float64(n) >= r.cfg.FailureRate ||
		r.cfg.SlowCallRate > 0 && float64(slow)/float64(n) >= r.cfg.SlowCallRate
}

func (r *refBreaker) set(st State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setState(st)
}

func (r *refBreaker) snapshot() Metrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.metrics
	m.State = r.state
	if r.state == Open && r.now() >= r.until {
		m.State = HalfOpen // what a call would see now
	}
	if m.State == Open {
		m.ProbeIn = r.until - r.now()
	}
	m.Calls = m.Successes + m.Failures + m.Ignored
	return m
}

// randomConfig returns a configuration exercising a random mix of rules.
func randomConfig(rng *rand.Rand) Config {
	cfg := Config{
		OpenDuration:      time.Duration(1+rng.IntN(50)) * time.Millisecond,
		HalfOpenProbes:    1 + rng.IntN(3),
		HalfOpenSuccesses: 1 + rng.IntN(3),
	}
	if rng.IntN(2) == 0 {
		cfg.ConsecutiveFailures = 1 + rng.IntN(6)
	}
	if rng.IntN(2) == 0 {
		cfg.OpenBackoff = 1 + rng.Float64()*2
		cfg.MaxOpenDuration = cfg.OpenDuration * time.Duration(1+rng.IntN(8))
	}
	rates := rng.IntN(4) // none, failure, slow, both
	if rates&1 != 0 {
		cfg.FailureRate = []float64{0.1, 0.25, 0.3, 0.5, 0.7, 1}[rng.IntN(6)]
	}
	if rates&2 != 0 {
		cfg.SlowCallRate = []float64{0.2, 0.5, 0.8}[rng.IntN(3)]
	}
	if rng.IntN(3) == 0 || rates&2 != 0 {
		cfg.SlowCallThreshold = time.Duration(1+rng.IntN(10)) * time.Millisecond
	}
	if rates != 0 {
		if rng.IntN(2) == 0 {
			cfg.CountWindow = 1 + rng.IntN(30)
			cfg.MinimumCalls = 1 + rng.IntN(cfg.CountWindow)
		} else {
			cfg.TimeWindowBuckets = 1 + rng.IntN(10)
			cfg.TimeWindow = time.Duration(cfg.TimeWindowBuckets*(1+rng.IntN(20))) * time.Millisecond
			cfg.MinimumCalls = 1 + rng.IntN(20)
		}
	}
	return cfg
}

// TestModel runs random traces of calls, outcomes, clock steps and operator
// overrides against the lock-free Breaker and the reference, and requires
// the same admissions, states and counters after every step.
func TestModel(t *testing.T) {
	traces, steps := 300, 400
	if testing.Short() {
		traces = 50
	}
	for seed := range uint64(traces) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { modelTrace(t, seed, steps) })
		})
	}
}

func modelTrace(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 42))
	cfg := randomConfig(rng)
	b := mustNew(t, cfg)
	ref := newRef(cfg)
	type pair struct {
		p Permit
		r refPermit
	}
	var outstanding []pair
	var trace []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("config %+v\ntrace (last 30 steps):\n%s\n"+format, append([]any{cfg, lastLines(trace, 30)}, args...)...)
	}
	for step := range steps {
		var what string
		switch k := rng.IntN(100); {
		case k < 40:
			p, err := b.Allow()
			rp, ok := ref.allow()
			what = fmt.Sprintf("allow -> %v", ok)
			if (err == nil) != ok {
				fail("step %d: allow: breaker err=%v, reference admitted=%v", step, err, ok)
			}
			if ok {
				outstanding = append(outstanding, pair{p, rp})
			} else {
				got, gotOK := seawall.RetryAfter(err)
				want, wantOK := ref.hint()
				if got != want || gotOK != wantOK {
					fail("step %d: rejection hint: breaker %v,%v, reference %v,%v", step, got, gotOK, want, wantOK)
				}
			}
		case k < 80 && len(outstanding) > 0:
			i := rng.IntN(len(outstanding))
			pp := outstanding[i]
			outstanding = append(outstanding[:i], outstanding[i+1:]...)
			o := []Outcome{Success, Success, Success, Failure, Failure, Ignore}[rng.IntN(6)]
			what = fmt.Sprintf("done(%d) permit %v/gen%d", o, pp.r.state, pp.r.gen)
			pp.p.Record(o)
			ref.done(pp.r, o)
		case k < 97:
			d := time.Duration(rng.IntN(4000)) * time.Microsecond
			if rng.IntN(2) == 0 { // land exactly on thresholds and bucket edges too
				d = d.Truncate(time.Millisecond)
			}
			what = fmt.Sprintf("sleep %v", d)
			bubble.Sleep(d)
		default:
			st := []State{Closed, ForcedOpen, Disabled}[rng.IntN(3)]
			what = fmt.Sprintf("set %v", st)
			b.set(st)
			ref.set(st)
		}
		trace = append(trace, fmt.Sprintf("%4d t=%v %s -> %v", step, ref.now(), what, ref.snapshot().State))
		if got, want := b.Metrics(), ref.snapshot(); got != want {
			fail("step %d: metrics differ\n breaker:   %+v\n reference: %+v", step, got, want)
		}
	}
}

func lastLines(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := ""
	for _, l := range lines {
		s += l + "\n"
	}
	return s
}

// Sanity: the reference itself trips as documented.
func TestReferenceTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRef(Config{FailureRate: 0.5, CountWindow: 4, MinimumCalls: 4})
		for range 4 {
			p, ok := r.allow()
			require.True(t, ok)
			r.done(p, Failure)
		}
		require.Equal(t, Open, r.snapshot().State)
	})
}
