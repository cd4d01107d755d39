package storm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/ratelimit"
)

// A Variant is how the replicas of the account service limit what they
// admit, in a fleet run (see the package doc, "The fleet").
type Variant int

// The variants of a fleet run, (1) to (3).
const (
	// Copied gives every replica a local limiter at the service's
	// capacity: the configuration of a single instance, copied to each.
	Copied Variant = iota
	// Split gives every replica a local limiter at its share of the
	// capacity: capacity ÷ replicas, bursts of ceil(burst ÷ replicas).
	Split
	// Shared gives every replica a handle on one limit at the service's
	// capacity, which they all ask: in the program, a bucket in Redis
	// (redisrate); see [Fleet.Shared].
	Shared
	NumVariants
)

// AllVariants lists every variant, in order.
var AllVariants = []Variant{Copied, Split, Shared}

var variantNames = [NumVariants]string{"local, at capacity", "local, capacity/R", "shared, at capacity"}

// Number returns the variant's number, "1" to "3".
func (v Variant) Number() string {
	if v < 0 || v >= NumVariants {
		return "?"
	}
	return string(rune('1' + v))
}

// String returns the variant's number and short name, e.g. "3 shared, at capacity".
func (v Variant) String() string {
	if v < 0 || v >= NumVariants {
		return fmt.Sprintf("Variant(%d)", int(v))
	}
	return v.Number() + " " + variantNames[v]
}

// MarshalText encodes a variant as its number.
func (v Variant) MarshalText() ([]byte, error) { return []byte(v.Number()), nil }

// UnmarshalText decodes a variant's number.
func (v *Variant) UnmarshalText(b []byte) error {
	if len(b) != 1 || b[0] < '1' || b[0] >= '1'+byte(NumVariants) {
		return fmt.Errorf("variant %q unknown; want 1 to %d", b, NumVariants)
	}
	*v = Variant(b[0] - '1')
	return nil
}

// A Limit is what a replica asks before it admits an attempt: Try takes n
// tokens now and returns nil, or returns an error matching
// seawall.ErrRejected with a retry-after hint. A *ratelimit.Limiter is a
// Limit; so is a *redisrate.Limiter, a bucket in Redis that a fleet
// shares, which is what the program gives [Fleet.Shared]. Package storm
// imports no Redis client: the program, a module of its own, does.
type Limit interface {
	Try(n int) error
}

// Fleet is the fleet variant of a [Scenario]: the account service runs as
// Replicas replicas behind a load balancer, in front of one backend (the
// scenario's Workers, its capacity), and the callers are the scenario's.
type Fleet struct {
	// Replicas is the number of replicas, in [1,100].
	Replicas int

	// Assign, if set, is the replica of each caller (Assign[i] for caller
	// i, Callers entries in [0,Replicas)); if nil, each caller picks one at
	// random, seeded by the scenario's Seed (see [Fleet.Assignment]).
	Assign []int `json:"assign,omitempty"`

	// Shared returns replica i's handle on the limit that every replica
	// shares in variant Shared: rate events per second of real time (the
	// scenario's rate scaled by its Speed) in bursts of burst. It is called
	// for each replica at the start of each run of Shared; the handles of
	// one run must share one bucket, and different runs different buckets.
	// If nil, the replicas share one in-process ratelimit.Limiter: a limit
	// as shared as a limit gets, which the package's tests use in virtual
	// time.
	Shared func(replica, replicas int, rate float64, burst int) (Limit, error) `json:"-"`
}

// Validate reports the first invalid field of f, for scenario s.
func (f Fleet) Validate(s Scenario) error {
	if f.Replicas < 1 || f.Replicas > 100 {
		return fmt.Errorf("fleet: Replicas %d out of range [1,100]", f.Replicas)
	}
	if f.Assign != nil {
		if len(f.Assign) != s.Callers {
			return fmt.Errorf("fleet: Assign has %d entries for %d callers", len(f.Assign), s.Callers)
		}
		for i, r := range f.Assign {
			if r < 0 || r >= f.Replicas {
				return fmt.Errorf("fleet: Assign[%d] %d out of range [0,%d)", i, r, f.Replicas)
			}
		}
	}
	return nil
}

// Assignment returns the replica of each caller of s: f.Assign, or, if it
// is nil, a replica picked at random for each caller, as a load balancer
// that spreads connections, not requests, does to clients that keep one
// connection (HTTP/2, or gRPC's default pick_first): kube-proxy picks a
// backend at random for each connection. The picks are seeded by s.Seed,
// so every variant, and every run, sees the same assignment.
func (f Fleet) Assignment(s Scenario) []int {
	if f.Assign != nil {
		return f.Assign
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0xf1ee7))
	out := make([]int, s.Callers)
	for i := range out {
		out[i] = rng.IntN(f.Replicas)
	}
	return out
}

// limits returns the rate and burst of each replica's limit in variant v,
// in scenario time; for Shared, those of the one limit they share.
func (f Fleet) limits(s Scenario, v Variant) (float64, int) {
	p := s.Derived()
	if v == Split {
		return p.Limiter.Rate / float64(f.Replicas), (p.Limiter.Burst + f.Replicas - 1) / f.Replicas
	}
	return p.Limiter.Rate, p.Limiter.Burst
}

// DefaultFleet returns the default fleet run: the default scenario's
// service and callers on a shorter timeline, 3s of warm-up, a spike of ×3
// for 4s, 3s after it, in real time (about 11s), against 4 replicas. The
// spike is ×3, not the storm's ×2: the callers' breakers cut the load on
// a drowning backend within a second, and ×3 shows what (1) lets through
// before they do.
func DefaultFleet() (Scenario, Fleet) {
	s := Default()
	s.Factor = 3
	s.TriggerAt, s.TriggerFor, s.Length = 3*time.Second, 4*time.Second, 10*time.Second
	return s, Fleet{Replicas: 4}
}

// FleetResult is the outcome of one variant's fleet run.
type FleetResult struct {
	Variant Variant `json:"variant"`
	// Rate and Burst are each replica's limit (for Shared, the limit they
	// share), in scenario time.
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`

	// Attempts, Admitted and Refused count, during the trigger, the
	// attempts that reached a replica, those its limit admitted to the
	// backend and those it refused; Errors those it could not decide (its
	// limit failed without a hint of when to come back). Counted by when
	// the attempt reached the replica.
	Attempts int `json:"attempts"`
	Admitted int `json:"admitted"`
	Refused  int `json:"refused"`
	Errors   int `json:"errors,omitempty"`

	// AdmittedRate is Admitted per second of the trigger, all replicas
	// together: what the backend was asked to take.
	AdmittedRate float64 `json:"admittedRate"`
	// Peak is the most attempts the replicas admitted in one second,
	// anywhere in the run (windows of PeakWindow sliding by BinWidth),
	// all replicas together: a limit at Rate with bursts of Burst admits
	// at most Rate + Burst in any second.
	Peak int `json:"peak"`
	// RefusedShare is Refused ÷ Attempts.
	RefusedShare float64 `json:"refusedShare"`

	// Replicas are the same counts for each replica, with its callers.
	Replicas []ReplicaStats `json:"replicas"`

	// AdmittedTimeline counts the attempts admitted in each BinWidth of
	// the run, all replicas together, up to the last request's end.
	AdmittedTimeline []int `json:"admittedTimeline"`

	// Result is the run seen as a strategy's: the records of the
	// requests, their metrics (goodput, p99 latency, success, …) and the
	// backend's statistics. Its Strategy is (e): the callers are (e)'s.
	Result *Result `json:"result"`
}

// ReplicaStats are one replica's counts during the trigger.
type ReplicaStats struct {
	Callers  int `json:"callers"`
	Attempts int `json:"attempts"`
	Admitted int `json:"admitted"`
	Refused  int `json:"refused"`
}

// FleetCallers is the strategy of the callers of a fleet run: (e), with a
// retry budget and a circuit breaker each, honouring the replicas'
// retry-after hints.
const FleetCallers = Breaker

// RunFleet runs the variants side by side, each against its own fresh
// backend, replicas and callers, with the same arrivals, and returns
// their results in the order given. It returns when every goroutine it
// started has ended. It runs on the real clock (the time package's), as
// [Run] does; s.HTTP is not supported.
func RunFleet(ctx context.Context, s Scenario, f Fleet, variants []Variant) ([]*FleetResult, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := f.Validate(s); err != nil {
		return nil, err
	}
	if s.HTTP {
		return nil, errors.New("fleet: a fleet run is in process only: Scenario.HTTP is not supported")
	}
	out := make([]*FleetResult, len(variants))
	errs := make([]error, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		wg.Go(func() { out[i], errs[i] = runVariant(ctx, s, f, v) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err // every variant's run ended with it
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// replica is one replica of the account service: its limit, in front of
// the backend that every replica shares, and its counts.
type replica struct {
	limit   Limit
	backend *service
	run     *fleetRun
	callers int

	attempts, admitted, refused atomic.Int64 // during the trigger
}

// fleetRun is what the replicas of one variant's run share: the clock and
// the counts of the whole fleet.
type fleetRun struct {
	s        Scenario
	start    time.Time
	timeline []atomic.Int64 // admitted per BinWidth
	errors   atomic.Int64   // during the trigger
}

// now returns the scenario time since the start.
func (r *fleetRun) now() time.Duration {
	return time.Duration(float64(time.Since(r.start)) * r.s.Speed)
}

// inTrigger reports whether scenario time t is in the trigger window.
func (r *fleetRun) inTrigger(t time.Duration) bool {
	return t >= r.s.TriggerAt && t < r.s.TriggerEnd()
}

// call is one attempt reaching the replica: it asks the replica's limit,
// and sends the attempt to the backend if the limit admits it. A refusal
// goes back as the service's "overloaded" answer with the limit's hint, as
// (f)'s do.
func (rp *replica) call(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := rp.run.now()
	trig := rp.run.inTrigger(t)
	if trig {
		rp.attempts.Add(1)
	}
	if err := rp.limit.Try(1); err != nil {
		hint, ok := seawall.RetryAfter(err)
		if !errors.Is(err, seawall.ErrRejected) || !ok {
			if trig {
				rp.run.errors.Add(1)
			}
			return err // a failure, not shedding
		}
		if trig {
			rp.refused.Add(1)
		}
		return seawall.WithRetryAfter(errOverloaded, hint)
	}
	if trig {
		rp.admitted.Add(1)
	}
	tl := rp.run.timeline
	tl[min(int(t/BinWidth), len(tl)-1)].Add(1)
	return rp.backend.call(ctx)
}

// runVariant runs variant v of the fleet: the backend's workers, the
// replicas with their limits, and the callers, each sticky to its replica.
func runVariant(ctx context.Context, s Scenario, f Fleet, v Variant) (*FleetResult, error) {
	sp := s.Speed
	rate, burst := f.limits(s, v)
	res := &FleetResult{Variant: v, Rate: rate, Burst: burst}
	limits := make([]Limit, f.Replicas)
	switch {
	case v == Shared && f.Shared != nil:
		for i := range limits {
			l, err := f.Shared(i, f.Replicas, rate*sp, burst)
			if err != nil {
				return nil, fmt.Errorf("fleet: the shared limit of replica %d: %w", i, err)
			}
			limits[i] = l
		}
	default:
		var one *ratelimit.Limiter
		for i := range limits {
			if one == nil || v != Shared {
				l, err := ratelimit.New(ratelimit.Config{Rate: rate * sp, Burst: burst})
				if err != nil {
					return nil, fmt.Errorf("fleet: the limit of replica %d: %w", i, err)
				}
				one = l
			}
			limits[i] = one
		}
	}

	start := time.Now()
	svc := s.newService(start)
	svc.dropExpired = true // in every variant, so that only the limits differ
	span := s.Length + s.Deadline + s.AttemptTimeout
	run := &fleetRun{s: s, start: start, timeline: make([]atomic.Int64, (span+BinWidth-1)/BinWidth)}
	assign := f.Assignment(s)
	replicas := make([]*replica, f.Replicas)
	for i := range replicas {
		replicas[i] = &replica{limit: limits[i], backend: svc, run: run}
	}
	clients := make([]seawall.Policy, s.Callers)
	var transitions atomic.Uint64
	retries := make([]func() (uint64, uint64), s.Callers)
	for i := range s.Callers {
		r, b, _, err := s.client(FleetCallers, i, sp, func(string, breaker.State, breaker.State) { transitions.Add(1) })
		if err != nil {
			return nil, err
		}
		clients[i] = seawall.Pipeline(r, b)
		retries[i] = func() (uint64, uint64) { m := r.Metrics(); return m.Retries, m.Budget.Exhausted }
		replicas[assign[i]].callers++
	}

	var workers sync.WaitGroup
	for range s.Workers {
		workers.Go(svc.worker)
	}
	records := drive(ctx, s, start, func(i int, sent time.Duration) Record {
		return s.request(ctx, sent, clients[i], replicas[assign[i]].call)
	})
	close(svc.stop)
	workers.Wait()

	sr := &Result{Strategy: FleetCallers, Records: records, BreakerTransitions: transitions.Load()}
	for _, m := range retries {
		r, e := m()
		sr.Retries += r
		sr.BudgetExhausted += e
	}
	s.conclude(sr, svc)
	res.Result = sr
	for _, rp := range replicas {
		st := ReplicaStats{Callers: rp.callers, Attempts: int(rp.attempts.Load()), Admitted: int(rp.admitted.Load()), Refused: int(rp.refused.Load())}
		res.Replicas = append(res.Replicas, st)
		res.Attempts += st.Attempts
		res.Admitted += st.Admitted
		res.Refused += st.Refused
	}
	res.Errors = int(run.errors.Load())
	if s.TriggerFor > 0 {
		res.AdmittedRate = float64(res.Admitted) / s.TriggerFor.Seconds()
	}
	res.RefusedShare = ratio(res.Refused, res.Attempts)
	last := len(run.timeline)
	for last > 0 && run.timeline[last-1].Load() == 0 {
		last--
	}
	res.AdmittedTimeline = make([]int, last)
	for i := range last {
		res.AdmittedTimeline[i] = int(run.timeline[i].Load())
	}
	res.Peak = peak(res.AdmittedTimeline, int(PeakWindow/BinWidth))
	return res, ctx.Err()
}

// PeakWindow is the window of [FleetResult.Peak].
const PeakWindow = time.Second

// peak returns the largest sum of n consecutive bins.
func peak(bins []int, n int) int {
	best, sum := 0, 0
	for i, b := range bins {
		sum += b
		if i >= n {
			sum -= bins[i-n]
		}
		best = max(best, sum)
	}
	return best
}

// CheckFleet is [Check] for a fleet run: it returns, in plain words, why
// the figures of results, a fleet run of s with timers as late as late,
// cannot be trusted; none if they can. The warm-up's success is held to
// [WarmupTrusted] for the variants whose limits are at the service's
// capacity ((1) and (3)), as for the strategies: below capacity, an idle
// machine serves all but a few of their requests. (2)'s limits refuse
// some of the warm-up on an uneven fleet by design, so its warm-up is not
// held to it.
func CheckFleet(s Scenario, late Lateness, results []*FleetResult) []string {
	var rs []*Result
	var names []Variant
	for _, r := range results {
		if r.Variant != Split {
			rs = append(rs, r.Result)
			names = append(names, r.Variant)
		}
	}
	why := Check(s, late, nil)
	if s.TriggerAt > 0 && s.Rate < s.Capacity() {
		for i, r := range rs {
			if r.Metrics.WarmupSuccess < WarmupTrusted {
				why = append(why, fmt.Sprintf("(%s) served %.1f%% of the requests sent before the trigger, below capacity, where an idle machine serves over %.1f%%",
					names[i].Number(), 100*r.Metrics.WarmupSuccess, 100*WarmupTrusted))
			}
		}
	}
	return why
}
