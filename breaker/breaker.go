package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrOpen is returned when the breaker refuses a call: it is open, forced
// open, or half-open with every probe slot taken. It matches
// seawall.ErrRejected and seawall.ErrCircuitOpen with errors.Is, so a retry
// does not wait it out by default (retry.DefaultRetryable).
//
// The error returned by a tripped breaker carries a retry-after hint
// (seawall.RetryAfter). While open, it is the time left until the breaker
// admits probes. While half-open, it is the open duration the breaker would
// re-open for if a probe failed now (before jitter: the longest that period
// may be), since the probes' outcome is awaited: a refused caller comes back
// when the breaker has closed or when the period a failed probe started is
// about over, instead of hammering a breaker that is probing. A forced-open
// breaker's rejection carries no hint: it stays open until an operator
// resets it.
var ErrOpen error = &openSentinel{"breaker: open"}

type openSentinel struct{ msg string }

func (e *openSentinel) Error() string { return e.msg }
func (e *openSentinel) Is(target error) bool {
	return target == seawall.ErrRejected || target == seawall.ErrCircuitOpen
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

// DefaultClassify is the default [Config.Classify]. Two kinds of error are
// ignored, as saying nothing of the dependency's health:
//
//   - one that is or wraps context.Canceled: the caller gave up, the
//     dependency did nothing wrong;
//   - a refusal with a hint, for which seawall.IsOverload is true (a
//     seawall.ErrRejected with a retry-after hint, not a breaker's open
//     rejection): the dependency shed work it could not take, and the
//     call did not run. httpmw and grpcmw surface a 429, a 503 with
//     Retry-After, a RESOURCE_EXHAUSTED and an UNAVAILABLE with pushback
//     as such errors. Shedding is not failure: a client-side throttle
//     (package throttle) and the retry's wait answer it, and a breaker that
//     counted it would cut off a healthy dependency for being busy.
//
// Any other error is a failure: errors, 5xx answers without a hint, a
// rejection without a hint, and timeouts (context.DeadlineExceeded: the
// dependency was too slow).
func DefaultClassify(err error) Outcome {
	if errors.Is(err, context.Canceled) || seawall.IsOverload(err) {
		return Ignore
	}
	return Failure
}

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
// jitter) the breaker admits up to HalfOpenProbes concurrent probes, and
// refuses other calls with a hint; HalfOpenSuccesses successful probes close
// it, one failed probe re-opens it. Operators can force it open, disable it,
// or reset it.
//
// [Breaker.State] reports the state a call would see now, read from the
// clock, so no goroutine runs on the breaker's behalf; [Config.OnStateChange]
// is told of every transition, its cause and the counts behind it.
//
// There are two ways to use it. The primitive: [Breaker.Allow] returns a
// [Permit] (or ErrOpen), and [Permit.Done] records the call's outcome; this
// path takes no lock and allocates nothing. The convenience:
// [Breaker.Do] wraps a function, satisfying seawall.Policy.
//
// The success path reads the shared state word and increments a counter
// owned by the P (scheduler processor) it runs on, so goroutines on
// different cores do not write the same cache line. Failures, slow calls and
// state changes take a slower path.
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
	epoch     time.Time     // the clock is read as time.Since(epoch): cheap and monotonic
	clock     *clock.Coarse // if set, read instead, and epoch is its start
	slowNs    int64         // SlowCallThreshold, 0 if calls are never slow
	readStart bool          // Allow reads the clock (the slow-call rule needs a start)
	readEnd   bool          // Done reads the clock (slow-call rule or time window)
	rateRules bool

	counts   shard.Counters // per-P: cSuccess (fast path only), cRejected, cFailed, cIgnored
	fastMask uint64         // Allow's fast path admits a state word w with w&fastMask == 0
	tw       *timeWindow    // nil unless TimeWindow is set

	open  atomic.Pointer[openError] // the current open period, set by the trip winner
	trips atomic.Uint32             // consecutive trips since the breaker last closed

	slowCalls, otherSuccesses, transitions atomic.Uint64
	moves                                  [numStates * numStates]atomic.Uint32 // transitions by from × to

	slot  obs.Slot  // the registry that named this breaker, if any
	group *obs.Slot // the slot of the Group this breaker belongs to, if any

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
	if c := cfg.Clock; c != nil {
		b.clock, b.epoch = c, c.Start()
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
func (b *Breaker) now() int64 {
	if t, ok := b.coarse(); ok {
		return t
	}
	return max(int64(time.Since(b.epoch)), 0)
}

// coarse returns the coarse clock's reading, or false if there is none or
// it is stopped. It is the first half of now, for the paths that read the
// clock on every call (Done with a time window or a slow-call rule, Allow
// with a slow-call rule) to write now out: time.Since is a call, so now does
// not fit the inliner's budget, and calling now would add a call to the
// default path (no coarse clock), where this half costs only a nil check.
// A coarse reading is never negative: it counts from the clock's start,
// which is the breaker's epoch.
func (b *Breaker) coarse() (int64, bool) {
	if c := b.clock; c != nil {
		t, ok := c.Read()
		return int64(t), ok
	}
	return 0, false
}

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

// Record records the outcome o of the call, for callers that classify
// outcomes themselves.
func (p Permit) Record(o Outcome) {
	if p.b != nil {
		p.b.record(p, o)
	}
}

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

// State returns the state a call would see now. An open breaker whose open
// period has passed reports HalfOpen, as the next call would be admitted as a
// probe, even if no call has arrived since: State reads the clock, and no
// goroutine is needed to keep it true. Reading is not a transition: the
// transition to HalfOpen, counted in [Metrics] and reported to
// [Config.OnStateChange], is made by the call that arrives.
func (b *Breaker) State() State {
	w := b.state.Load()
	if stateOf(w) == Open {
		if oe := b.open.Load(); oe != nil && oe.gen == genOf(w) && b.now() >= oe.until {
			return HalfOpen
		}
	}
	return stateOf(w)
}

// ForceOpen moves the breaker to ForcedOpen: every call is rejected until
// Reset.
func (b *Breaker) ForceOpen() { b.set(ForcedOpen) }

// Disable moves the breaker to Disabled: every call is admitted and counted
// in Metrics, and the breaker never trips, until Reset.
func (b *Breaker) Disable() { b.set(Disabled) }

// Reset moves the breaker to Closed with an empty window, whatever its state,
// and forgets consecutive trips.
func (b *Breaker) Reset() { b.set(Closed) }

// Metrics is a snapshot of a breaker's counters since it was created.
type Metrics struct {
	State State `json:"state"` // as returned by [Breaker.State]
	// Calls is the number of admitted calls whose outcome was recorded:
	// Successes + Failures + Ignored.
	Calls       uint64 `json:"calls"`
	Successes   uint64 `json:"successes"`
	Failures    uint64 `json:"failures"`
	SlowCalls   uint64 `json:"slowCalls"` // successful or failed calls at or above SlowCallThreshold
	Ignored     uint64 `json:"ignored"`
	Rejections  uint64 `json:"rejections"`
	Transitions uint64 `json:"transitions"` // state changes, each reported once to OnStateChange
	// Moves counts the transitions by state: Moves[from][to] (in JSON,
	// under "moves", only the pairs that happened, as "from>to" keys).
	Moves Moves `json:"moves"`
	// ProbeIn is, while the breaker is open, the time until its open
	// period ends and the next call is admitted as a probe; 0 otherwise.
	// In JSON, integer nanoseconds.
	ProbeIn time.Duration `json:"probeIn"`
}

// Moves counts a breaker's transitions by state: Moves[from][to].
type Moves [numStates][numStates]uint64

// MarshalJSON encodes the pairs that happened as an object keyed by
// "from>to", such as {"closed>open":3,"open>half-open":3}.
func (m Moves) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for from := range m {
		for to, n := range m[from] {
			if n == 0 {
				continue
			}
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, stateNames[from]...)
			b = append(b, '>')
			b = append(b, stateNames[to]...)
			b = append(b, '"', ':')
			b = strconv.AppendUint(b, n, 10)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (m *Moves) UnmarshalJSON(b []byte) error {
	var pairs map[string]uint64
	if err := json.Unmarshal(b, &pairs); err != nil {
		return err
	}
	*m = Moves{}
	for k, n := range pairs {
		from, to, ok := strings.Cut(k, ">")
		var f, t State
		if !ok || f.UnmarshalText([]byte(from)) != nil || t.UnmarshalText([]byte(to)) != nil {
			return fmt.Errorf("breaker: moves: bad pair %q", k)
		}
		m[f][t] = n
	}
	return nil
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
	for i := range b.moves {
		m.Moves[i/numStates][i%numStates] = uint64(b.moves[i].Load())
	}
	if m.State == Open {
		if oe := b.open.Load(); oe != nil {
			m.ProbeIn = max(time.Duration(oe.until-b.now()), 0)
		}
	}
	return m
}

// Registration is how package registry names the breaker and hears of its
// transitions. Its result is opaque outside this module.
func (b *Breaker) Registration() *obs.Slot { return &b.slot }
