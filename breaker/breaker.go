package breaker

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrOpen is returned when the breaker refuses a call: it is open, forced
// open, or half-open with every probe slot taken. It matches
// seawall.ErrRejected and seawall.ErrCircuitOpen with errors.Is, so a
// retry does not wait it out by default (retry.DefaultRetryable). While the breaker is open after a trip,
// the error returned carries a retry-after hint (seawall.RetryAfter): the time
// left until the breaker admits probes.
var ErrOpen error = &openSentinel{"breaker: open"}

type openSentinel struct{ msg string }

func (e *openSentinel) Error() string { return e.msg }
func (e *openSentinel) Is(target error) bool {
	return target == seawall.ErrRejected || target == seawall.ErrCircuitOpen
}

// State is the state of a breaker.
type State uint8

const (
	// Closed admits every call and measures outcomes.
	Closed State = iota
	// Open rejects every call until the open duration has passed.
	Open
	// HalfOpen admits a limited number of probes; enough successful probes
	// close the breaker, one failed probe re-opens it.
	HalfOpen
	// ForcedOpen rejects every call until Reset: an operator override.
	ForcedOpen
	// Disabled admits every call and keeps counting outcomes, but never
	// trips, until Reset: an operator override.
	Disabled
)

var stateNames = [...]string{"closed", "open", "half-open", "forced-open", "disabled"}

// String returns the state's name: "closed", "open", "half-open",
// "forced-open" or "disabled".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Outcome is the classification of a call's result.
type Outcome uint8

const (
	// Success counts as a successful call.
	Success Outcome = iota
	// Failure counts as a failed call. Values other than Success and Ignore
	// are treated as Failure.
	Failure
	// Ignore counts as neither: the call is forgotten, and a half-open probe
	// slot it held is freed.
	Ignore
)

// DefaultClassify is the default [Config.Classify]: an error that is or wraps
// context.Canceled is ignored (the caller gave up; the dependency did nothing
// wrong), and any other error is a failure. Note that
// context.DeadlineExceeded is a failure: the dependency was too slow.
func DefaultClassify(err error) Outcome {
	if errors.Is(err, context.Canceled) {
		return Ignore
	}
	return Failure
}

// The state word packs, from the low bits: the state (3 bits), the probes in
// flight and the successful probes of the half-open state (16 bits each), and
// a generation (29 bits) that every transition increments, so a permit can
// tell whether the state it was issued in still holds.
const (
	stateBits     = 3
	probeBits     = 16
	inflightShift = stateBits
	succShift     = stateBits + probeBits
	genShift      = stateBits + 2*probeBits
	stateMask     = 1<<stateBits - 1
	probeMask     = 1<<probeBits - 1
)

func pack(st State, inflight, succ uint64, gen uint64) uint64 {
	return gen<<genShift | succ<<succShift | inflight<<inflightShift | uint64(st)
}

func stateOf(w uint64) State     { return State(w & stateMask) }
func genOf(w uint64) uint64      { return w >> genShift }
func inflightOf(w uint64) uint64 { return w >> inflightShift & probeMask }
func succOf(w uint64) uint64     { return w >> succShift & probeMask }

// A Breaker is a circuit breaker. It stops calls to a failing dependency
// (open), lets a few probes through after a pause (half-open), and resumes
// normal operation when they succeed (closed).
//
// In the closed state every call is admitted and its outcome measured. The
// breaker trips open when any configured rule says so: N consecutive
// failures; a failure rate, or a slow-call rate, at or above a threshold over
// a count window (the last N calls) or a time window (the last T, kept in
// buckets), once the window holds a minimum number of calls. Rules are
// evaluated when a failure or slow call is recorded. While open, calls fail
// fast with [ErrOpen] carrying a retry-after hint. After the open duration
// (fixed, or growing exponentially over consecutive trips, with optional
// jitter) the breaker admits up to HalfOpenProbes concurrent probes;
// HalfOpenSuccesses successful probes close it, one failed probe re-opens it.
// Operators can force it open, disable it, or reset it.
//
// There are two ways to use it. The primitive: [Breaker.Allow] returns a
// [Permit] (or ErrOpen), and [Permit.Done] records the call's outcome; this
// path takes no lock and allocates nothing. The convenience:
// [Breaker.Do] wraps a function, satisfying seawall.Policy.
//
// The success path reads one shared word and writes one counter chosen at
// random among per-CPU-ish shards, so concurrent callers do not contend on a
// cache line. Failures, slow calls and state changes take a slower path.
//
// The zero Config is valid (see [Config]). A Breaker is safe for concurrent
// use by multiple goroutines.
type Breaker struct {
	// state and consec are read by every call and written only on failures
	// and transitions; the padding keeps the counters below, written on
	// slower paths, off their cache line.
	state  atomic.Uint64
	consec atomic.Int64
	_      [48]byte

	cfg       Config
	epoch     time.Time // the clock is read as time.Since(epoch): cheap and monotonic
	slowNs    int64     // SlowCallThreshold, 0 if calls are never slow
	readStart bool      // Allow reads the clock (the slow-call rule needs a start)
	readEnd   bool      // Done reads the clock (slow-call rule or time window)
	rateRules bool

	counts   shard.Counters // per-P: cSuccess (fast path only), cRejected, cFailed, cIgnored
	fastMask uint64         // Allow's fast path admits a state word w with w&fastMask == 0
	tw       *timeWindow    // nil unless TimeWindow is set

	open  atomic.Pointer[openError] // the current open period, set by the trip winner
	trips atomic.Uint32             // consecutive trips since the breaker last closed

	slowCalls, otherSuccesses, transitions atomic.Uint64

	mu sync.Mutex  // guards the window and transitions into Closed
	cw countWindow // used when CountWindow is set
}

// Indexes of the per-P counters.
const (
	cSuccess  = iota // successes counted by the fast path, which the count window sums
	cRejected        // rejections
	cFailed          // failures
	cIgnored         // ignored outcomes
)

// New returns a closed breaker configured by cfg, or an error naming the
// first invalid field of cfg.
func New(cfg Config) (*Breaker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Breaker{
		cfg:       cfg,
		epoch:     time.Now(),
		slowNs:    int64(cfg.SlowCallThreshold),
		rateRules: cfg.FailureRate > 0 || cfg.SlowCallRate > 0,
		fastMask:  stateMask,
	}
	b.counts.Init()
	// The generation starts at 1, so a state word is never 0 and a fastMask
	// of all ones sends every Allow to the slow path.
	b.state.Store(pack(Closed, 0, 0, 1))
	b.readStart = b.slowNs > 0
	b.readEnd = b.slowNs > 0 || cfg.TimeWindow > 0
	if b.readStart {
		b.fastMask = ^uint64(0)
	}
	if cfg.TimeWindow > 0 {
		b.tw = newTimeWindow(cfg.TimeWindow, cfg.TimeWindowBuckets)
	}
	b.cw.size = uint64(cfg.CountWindow)
	return b, nil
}

// now returns the time since the breaker's epoch, in nanoseconds. The
// monotonic clock never goes back, but a breaker used under a fake clock that
// starts earlier (a testing/synctest bubble) would see negative times;
// clamping keeps the time window's bucket indexes in range.
func (b *Breaker) now() int64 { return max(int64(time.Since(b.epoch)), 0) }

// A Permit is the breaker's admission of one call. Record the call's outcome
// with exactly one call of [Permit.Done] or [Permit.Record]. A Permit is a
// small value: pass it by value; the zero Permit records nothing.
type Permit struct {
	b     *Breaker
	word  uint64 // the state word (state and generation) it was issued in
	start int64  // when it was issued, if the slow-call rule needs it
}

// Allow asks the breaker to admit one call. It returns a Permit on which the
// caller must record the outcome, or an error matching [ErrOpen] (and
// seawall.ErrRejected) if the breaker refuses the call.
func (b *Breaker) Allow() (p Permit, err error) {
	w := b.state.Load()
	if w&b.fastMask != 0 {
		return b.allowSlow()
	}
	p.b, p.word = b, w
	return
}

func (b *Breaker) allowSlow() (Permit, error) {
	for {
		w := b.state.Load()
		switch stateOf(w) {
		case Closed, Disabled:
			p := Permit{b: b, word: w}
			if b.readStart {
				p.start = b.now()
			}
			return p, nil
		case Open:
			oe := b.open.Load()
			if oe == nil || oe.gen != genOf(w) {
				// The trip that opened it has not published its period yet.
				return b.reject(ErrOpen)
			}
			now := b.now()
			if now < oe.until {
				return b.reject(oe)
			}
			half := pack(HalfOpen, 1, 0, genOf(w)+1)
			if b.transition(w, half) {
				b.notify(Open, HalfOpen)
				return Permit{b: b, word: pack(HalfOpen, 0, 0, genOf(half)), start: now}, nil
			}
		case HalfOpen:
			if inflightOf(w) >= uint64(b.cfg.HalfOpenProbes) {
				return b.reject(ErrOpen)
			}
			if b.state.CompareAndSwap(w, w+1<<inflightShift) {
				p := Permit{b: b, word: pack(HalfOpen, 0, 0, genOf(w))}
				if b.readStart {
					p.start = b.now()
				}
				return p, nil
			}
		default: // ForcedOpen
			return b.reject(ErrOpen)
		}
	}
}

func (b *Breaker) reject(err error) (Permit, error) {
	b.counts.Add(cRejected)
	return Permit{}, err
}

// Done records the outcome of the call: a nil err is a Success; any other is
// classified by [Config.Classify].
func (p Permit) Done(err error) {
	b := p.b
	if b == nil {
		return
	}
	if err == nil && !b.readEnd && stateOf(p.word) != HalfOpen && b.state.Load() == p.word {
		// fastSuccess, written out: the compiler does not inline it.
		i := shard.Pin()
		b.counts.AddPinned(i, cSuccess)
		shard.Unpin()
		if b.consec.Load() != 0 {
			b.consec.Store(0)
		}
		return
	}
	o := Success
	if err != nil {
		o = b.cfg.Classify(err)
	}
	b.record(p, o)
}

// fastSuccess counts a success admitted in the current state, closed or
// disabled: the hot path.
func (b *Breaker) fastSuccess() {
	i := shard.Pin()
	b.counts.AddPinned(i, cSuccess)
	shard.Unpin()
	if b.consec.Load() != 0 {
		b.consec.Store(0)
	}
}

// Record records the outcome o of the call, for callers that classify
// outcomes themselves.
func (p Permit) Record(o Outcome) {
	if p.b != nil {
		p.b.record(p, o)
	}
}

func (b *Breaker) record(p Permit, o Outcome) {
	var now int64
	slow := false
	if b.readEnd {
		now = b.now()
		slow = b.slowNs > 0 && now-p.start >= b.slowNs
	}
	if o == Ignore {
		b.counts.Add(cIgnored)
		if stateOf(p.word) == HalfOpen {
			b.releaseProbe(p)
		}
		return
	}
	failed := o != Success
	if failed || slow || stateOf(p.word) == HalfOpen {
		b.recordSlow(p, failed, slow, now)
		return
	}
	b.countSuccess(p, now)
}

// countSuccess counts a fast success (closed or disabled) at time now.
func (b *Breaker) countSuccess(p Permit, now int64) {
	if b.state.Load() != p.word {
		// Issued before a transition: count it, but not in the new window.
		b.otherSuccesses.Add(1)
		return
	}
	if b.tw != nil {
		b.tw.add(now)
	}
	b.fastSuccess()
}

// recordSlow records a failure, a slow call or a probe's outcome.
func (b *Breaker) recordSlow(p Permit, failed, slow bool, now int64) {
	if failed {
		b.counts.Add(cFailed)
	} else {
		b.otherSuccesses.Add(1)
	}
	if slow {
		b.slowCalls.Add(1)
	}
	switch stateOf(p.word) {
	case HalfOpen:
		b.recordProbe(p, failed || slow)
		return
	case Disabled:
		return
	}
	if b.state.Load() != p.word {
		return // issued before a transition
	}
	trip := false
	if failed {
		trip = b.cfg.ConsecutiveFailures > 0 && b.consec.Add(1) >= int64(b.cfg.ConsecutiveFailures)
	} else if b.consec.Load() != 0 {
		b.consec.Store(0)
	}
	if !trip && b.rateRules {
		b.mu.Lock()
		if b.state.Load() == p.word {
			trip = b.rateTrips(b.windowRecord(now, failed, slow))
		}
		b.mu.Unlock()
	}
	if trip && b.transition(p.word, pack(Open, 0, 0, genOf(p.word)+1)) {
		b.notify(Closed, Open)
	}
}

// rateTrips reports whether a window's counts trip a rate rule.
func (b *Breaker) rateTrips(calls, failures, slow uint64) bool {
	if calls == 0 || calls < uint64(b.cfg.MinimumCalls) {
		return false
	}
	n := float64(calls)
	return b.cfg.FailureRate > 0 && float64(failures)/n >= b.cfg.FailureRate ||
		b.cfg.SlowCallRate > 0 && float64(slow)/n >= b.cfg.SlowCallRate
}

// windowRecord adds a failure or slow call to the window and returns the
// window's calls, failures and slow calls. b.mu must be held.
func (b *Breaker) windowRecord(now int64, failed, slow bool) (calls, failures, slowCalls uint64) {
	if b.tw != nil {
		return b.tw.record(now, failed, slow)
	}
	return b.cw.record(b.fastSuccesses(), failed, slow)
}

func (b *Breaker) fastSuccesses() uint64 { return b.counts.Load(cSuccess) }

// recordProbe records a half-open probe's outcome: bad re-opens the breaker,
// enough successes close it.
func (b *Breaker) recordProbe(p Permit, bad bool) {
	for {
		w := b.state.Load()
		if stateOf(w) != HalfOpen || genOf(w) != genOf(p.word) {
			return // issued before a transition
		}
		if bad {
			if b.transition(w, pack(Open, 0, 0, genOf(w)+1)) {
				b.notify(HalfOpen, Open)
				return
			}
			continue
		}
		succ := succOf(w) + 1
		if succ >= uint64(b.cfg.HalfOpenSuccesses) {
			b.mu.Lock()
			ok := b.transition(w, pack(Closed, 0, 0, genOf(w)+1))
			b.mu.Unlock()
			if ok {
				b.notify(HalfOpen, Closed)
				return
			}
			continue
		}
		if b.state.CompareAndSwap(w, pack(HalfOpen, max(inflightOf(w), 1)-1, succ, genOf(w))) {
			return
		}
	}
}

// releaseProbe frees the probe slot of an ignored half-open call.
func (b *Breaker) releaseProbe(p Permit) {
	for {
		w := b.state.Load()
		if stateOf(w) != HalfOpen || genOf(w) != genOf(p.word) || inflightOf(w) == 0 {
			return
		}
		if b.state.CompareAndSwap(w, w-1<<inflightShift) {
			return
		}
	}
}

// transition moves the state word from one value to another with a CAS and,
// if it won, does what entering the new state takes. Transitions into Closed
// must hold b.mu, which guards the window they reset. The caller that won
// reports the transition with notify, after releasing any lock.
func (b *Breaker) transition(from, to uint64) bool {
	var now int64
	if st := stateOf(to); st == Closed || st == Open {
		now = b.now()
	}
	if stateOf(to) == Closed {
		// Reset before the CAS: no success is counted in the new window
		// until the CAS publishes it, so the window starts exact.
		if b.tw != nil {
			b.tw.reset(now)
		} else {
			b.cw.reset(b.fastSuccesses())
		}
		b.consec.Store(0)
	}
	if !b.state.CompareAndSwap(from, to) {
		return false
	}
	switch stateOf(to) {
	case Open:
		d := b.openDuration(b.trips.Add(1))
		until := now + int64(d)
		if until < now { // an open duration of centuries; saturate
			until = math.MaxInt64
		}
		b.open.Store(&openError{b: b, gen: genOf(to), until: until})
	case Closed:
		b.trips.Store(0)
	}
	if stateOf(from) != stateOf(to) {
		b.transitions.Add(1)
	}
	return true
}

func (b *Breaker) notify(from, to State) {
	if from != to && b.cfg.OnStateChange != nil {
		b.cfg.OnStateChange(b.cfg.Name, from, to)
	}
}

// openDuration returns how long the n-th consecutive trip stays open.
func (b *Breaker) openDuration(n uint32) time.Duration {
	d := float64(b.cfg.OpenDuration) * math.Pow(b.cfg.OpenBackoff, float64(n-1))
	d = min(d, float64(b.cfg.MaxOpenDuration))
	if b.cfg.OpenJitter > 0 {
		d *= 1 - b.cfg.OpenJitter*rand.Float64()
	}
	// float64(math.MaxInt64) rounds up to 2^63, which would convert to a
	// negative Duration.
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// openError is the rejection of an open breaker, one per open period: it
// matches ErrOpen and carries the time left until probes are admitted.
type openError struct {
	b     *Breaker
	gen   uint64
	until int64 // breaker time at which the period ends
}

func (e *openError) Error() string { return ErrOpen.Error() }
func (e *openError) Is(target error) bool {
	return target == ErrOpen || target == seawall.ErrRejected || target == seawall.ErrCircuitOpen
}

// RetryAfter returns the time left until the breaker admits probes.
func (e *openError) RetryAfter() time.Duration { return time.Duration(max(e.until-e.b.now(), 0)) }

// Do runs op if the breaker admits it, records its outcome, and returns its
// error; if the breaker refuses, Do returns an error matching [ErrOpen]
// without running op. A panic in op is recorded as a failure and continues.
// Do satisfies seawall.Policy.
func (b *Breaker) Do(ctx context.Context, op func(context.Context) error) error {
	// Allow and Done, with their fast paths written out: this is the
	// hottest way to use a breaker.
	w := b.state.Load()
	if w&b.fastMask != 0 || b.readEnd {
		return b.doSlow(ctx, op)
	}
	finished := false
	defer func() {
		if !finished {
			b.record(Permit{b: b, word: w}, Failure) // op panicked; the panic continues
		}
	}()
	err := op(ctx)
	finished = true
	if err == nil && b.state.Load() == w {
		b.fastSuccess()
		return nil
	}
	Permit{b: b, word: w}.Done(err)
	return err
}

func (b *Breaker) doSlow(ctx context.Context, op func(context.Context) error) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			b.record(p, Failure) // op panicked; the panic continues
		}
	}()
	err = op(ctx)
	finished = true
	p.Done(err)
	return err
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy, so that a pipeline through the
// breaker allocates nothing. It is Do's code with c.Run for op: Do cannot
// call it, or a closure passed to Do would escape to the heap.
func (b *Breaker) DoChain(ctx context.Context, c seawall.Chain) error {
	// Allow and Done, with their fast paths written out: this is the
	// hottest way to use a breaker.
	w := b.state.Load()
	if w&b.fastMask != 0 || b.readEnd {
		return b.doSlowChain(ctx, c)
	}
	finished := false
	defer func() {
		if !finished {
			b.record(Permit{b: b, word: w}, Failure) // op panicked; the panic continues
		}
	}()
	err := c.Run(ctx)
	finished = true
	if err == nil && b.state.Load() == w {
		b.fastSuccess()
		return nil
	}
	Permit{b: b, word: w}.Done(err)
	return err
}

func (b *Breaker) doSlowChain(ctx context.Context, c seawall.Chain) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			b.record(p, Failure) // op panicked; the panic continues
		}
	}()
	err = c.Run(ctx)
	finished = true
	p.Done(err)
	return err
}

// State returns the breaker's current state. An open breaker whose open
// duration has passed reports Open until the next call moves it to HalfOpen.
func (b *Breaker) State() State { return stateOf(b.state.Load()) }

// ForceOpen moves the breaker to ForcedOpen: every call is rejected until
// Reset.
func (b *Breaker) ForceOpen() { b.set(ForcedOpen) }

// Disable moves the breaker to Disabled: every call is admitted and counted
// in Metrics, and the breaker never trips, until Reset.
func (b *Breaker) Disable() { b.set(Disabled) }

// Reset moves the breaker to Closed with an empty window, whatever its state,
// and forgets consecutive trips.
func (b *Breaker) Reset() { b.set(Closed) }

func (b *Breaker) set(st State) {
	b.mu.Lock()
	var from uint64
	for {
		from = b.state.Load()
		if b.transition(from, pack(st, 0, 0, genOf(from)+1)) {
			break
		}
	}
	b.mu.Unlock()
	b.notify(stateOf(from), st)
}

// Metrics is a snapshot of a breaker's counters since it was created.
type Metrics struct {
	State State `json:"state"`
	// Calls is the number of admitted calls whose outcome was recorded:
	// Successes + Failures + Ignored.
	Calls       uint64 `json:"calls"`
	Successes   uint64 `json:"successes"`
	Failures    uint64 `json:"failures"`
	SlowCalls   uint64 `json:"slowCalls"` // successful or failed calls at or above SlowCallThreshold
	Ignored     uint64 `json:"ignored"`
	Rejections  uint64 `json:"rejections"`
	Transitions uint64 `json:"transitions"` // state changes, each reported once to OnStateChange
}

// Metrics returns a snapshot of the breaker's counters, read from atomics
// without stopping calls; counters of calls in progress may be one apart.
func (b *Breaker) Metrics() Metrics {
	m := Metrics{
		State:       b.State(),
		Successes:   b.otherSuccesses.Load() + b.counts.Load(cSuccess),
		Failures:    b.counts.Load(cFailed),
		SlowCalls:   b.slowCalls.Load(),
		Ignored:     b.counts.Load(cIgnored),
		Rejections:  b.counts.Load(cRejected),
		Transitions: b.transitions.Load(),
	}
	m.Calls = m.Successes + m.Failures + m.Ignored
	return m
}
