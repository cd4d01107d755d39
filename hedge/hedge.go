package hedge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrStopHedging is matched, with errors.Is, by an error marked with
// [StopHedging]: the server said not to try again (gRFC A6: a negative
// pushback). Such an error, if non-fatal, starts no more hedges for the
// call and cancels no attempt already running.
var ErrStopHedging = errors.New("hedge: stop hedging")

// StopHedging returns err marked as the server's "do not try again": a
// non-fatal error that starts no more hedges ([ErrStopHedging]). The result
// wraps err, so errors.Is and errors.As see through it. StopHedging(nil) is
// nil.
func StopHedging(err error) error {
	if err == nil {
		return nil
	}
	return &stopError{err: err}
}

type stopError struct{ err error }

func (e *stopError) Error() string        { return e.err.Error() }
func (e *stopError) Unwrap() error        { return e.err }
func (e *stopError) Is(target error) bool { return target == ErrStopHedging }

// DefaultNonFatal is the default [Config.NonFatal]: an error is non-fatal
// (the next hedge starts at once, the others go on) unless it is marked
// permanent (seawall.Permanent) or is a context's error (context.Canceled,
// context.DeadlineExceeded): an attempt whose context ended says nothing
// about the others, and a permanent error would be the answer of every
// attempt. An overload refusal (seawall.IsOverload) is non-fatal, and its
// pushback, if any, delays the next hedge.
func DefaultNonFatal(err error) bool {
	return !seawall.IsPermanent(err) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Hedge is a hedging policy for idempotent calls (gRFC A6's hedging): a
// call runs its first attempt at once, on the caller's goroutine, and if no
// acceptable answer has come after the hedge delay it starts another
// attempt alongside, and so on up to MaxAttempts attempts in all. The
// first successful attempt wins: the others' contexts are cancelled, and
// their values, whenever they come, are given to the call's release
// function (closing an HTTP body, say).
//
// The hedge delay is fixed ([Config.Delay]) or a percentile of recent
// attempts' latencies ([Config.Percentile], the default: the 95th), read
// from a lock-free histogram.
//
// An attempt's error is fatal or non-fatal ([Config.NonFatal]). A fatal
// error cancels every attempt and is returned. A non-fatal one starts the
// next hedge at once (or after the retry-after hint it carries,
// seawall.RetryAfter: a gRPC pushback, an HTTP Retry-After), or, if it is
// marked [StopHedging], starts no more. If every attempt
// fails with non-fatal errors, the call returns the first attempt's error,
// as Polly does: the first attempt is the one the caller would have made
// without hedging. A hedge starts only while [Config.Gate] allows and the
// [Config.Budget] has room; a refusal starts no more hedges for the call
// and never cancels an attempt already running.
//
// When the first attempt answers within the delay, as most do, no
// goroutine is started: a timer (time.AfterFunc) is armed and stopped, and
// a hedge runs on the timer's goroutine only when it fires. Such a call
// allocates the attempt's context (context.WithCancel) and the timer, and
// reuses the state of an earlier such call of the Hedge, for the same
// value type. Since the first attempt runs on the caller's goroutine, a
// call returns when that attempt returns, which, once a hedge has won or
// ctx has ended, is at once for an operation that honours its context, as
// operations must.
//
// The entry points are [Get] (an operation with a value) and [Hedge.Do]
// (one without), which satisfies seawall.Policy. A Hedge is safe for
// concurrent use by multiple goroutines.
type Hedge struct {
	cfg     Config
	hist    *histogram             // nil for a fixed delay
	request interface{ Request() } // cfg.Budget's Request method, if any

	counts      shard.Counters // per-P: cCalls, cHedges, cWins, cBudget
	gateRefused atomic.Uint64
	slot        obs.Slot

	// calls holds call states that no goroutine can touch any more, for
	// reuse by later calls (see call.quiet). It holds a *call[T] for
	// whatever T the Hedge's calls use; a call of another T finds none to
	// reuse and makes its own.
	calls sync.Pool
}

const (
	cCalls = iota
	cHedges
	cWins
	cBudget
)

// New returns a Hedge configured by cfg, or an error naming the field of
// cfg that is out of range.
func New(cfg Config) (*Hedge, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Hedge{cfg: cfg}
	if cfg.Percentile > 0 {
		h.hist = &histogram{p: cfg.Percentile}
	}
	h.request, _ = cfg.Budget.(interface{ Request() })
	h.counts.Init()
	return h, nil
}

// Delay returns the hedge delay calls start with now, and false if no
// hedge would start (a percentile delay before enough latencies are seen,
// with no warm-up Delay).
func (h *Hedge) Delay() (time.Duration, bool) {
	if h.hist != nil {
		if q := h.hist.q.Load(); q > 0 {
			return time.Duration(q), true
		}
	}
	return h.cfg.Delay, h.cfg.Delay > 0
}

// Metrics is a snapshot of a Hedge's counters.
type Metrics struct {
	Calls     uint64 `json:"calls"`     // calls of Get and Do
	Hedges    uint64 `json:"hedges"`    // attempts started beyond the first
	HedgeWins uint64 `json:"hedgeWins"` // calls won by a hedge, not the first attempt
	// BudgetRefusals counts hedges the Budget refused; GateRefusals those
	// the Gate refused.
	BudgetRefusals uint64 `json:"budgetRefusals"`
	GateRefusals   uint64 `json:"gateRefusals"`
	// Delay is the hedge delay now (0 if no hedge would start).
	Delay time.Duration `json:"delay"`
}

// Metrics returns a snapshot of h's counters. Counts of concurrent calls
// may show a moment late.
func (h *Hedge) Metrics() Metrics {
	d, ok := h.Delay()
	if !ok {
		d = 0
	}
	return Metrics{
		Calls:          h.counts.Load(cCalls),
		Hedges:         h.counts.Load(cHedges),
		HedgeWins:      h.counts.Load(cWins),
		BudgetRefusals: h.counts.Load(cBudget),
		GateRefusals:   h.gateRefused.Load(),
		Delay:          d,
	}
}

// Registration is how package registry names the hedge. Its result is
// opaque outside this module.
func (h *Hedge) Registration() *obs.Slot { return &h.slot }

// Do runs op under h, as [Get] does, for an operation without a value. It
// satisfies seawall.Policy: it returns the winning attempt's nil, or the
// error Get would return.
func (h *Hedge) Do(ctx context.Context, op func(context.Context) error) error {
	_, err := get[struct{}](ctx, h, nil, nil, op, nil)
	return err
}

// DoChain runs c under h; it is shorthand for h.Do(ctx, c.Run), so that h
// is a seawall.ChainPolicy.
func (h *Hedge) DoChain(ctx context.Context, c seawall.Chain) error {
	return h.Do(ctx, c.Run)
}

// Get runs op under h: the first attempt at once on the caller's goroutine,
// hedges after the delay (see [Hedge]), and returns the value of the first
// attempt to succeed, or the error that ended the call: a fatal error, the
// first attempt's error if every attempt failed, or ctx.Err() if ctx ended
// first. op must be idempotent, and must return promptly once its context
// ends.
//
// release, if not nil, is called with the value of every attempt that
// succeeded but did not win, whenever it comes (possibly after Get has
// returned, on another goroutine), so that no resource is leaked. With a
// release, the winner's context is not cancelled when Get returns, so that
// a value read after (an HTTP response's body) still works; it ends with
// ctx, so pass a ctx that ends with the request (a context that outlives
// it, other than context.Background, keeps the winner's context among its
// children until it ends). Without a release, every attempt's context is
// cancelled by the time Get returns.
//
// If op panics on the caller's goroutine, the other attempts are cancelled
// and the panic continues; if it panics in a hedge, the call ends and Get
// panics with the same value.
func Get[T any](ctx context.Context, h *Hedge, op func(context.Context) (T, error), release func(T)) (T, error) {
	return GetGated(ctx, h, nil, op, release)
}

// GetGated is [Get] with a gate of the call's own: if gate is not nil, a
// hedge of this call starts only if gate returns true, asked after
// [Config.Gate] and before the [Config.Budget]. It is for a gate that
// depends on the call, such as the state of the breaker of the call's
// target (httpmw and grpcmw use it so), when one Hedge serves many
// targets. A refusal counts as a Gate refusal in [Metrics].
func GetGated[T any](ctx context.Context, h *Hedge, gate func() bool, op func(context.Context) (T, error), release func(T)) (T, error) {
	return get(ctx, h, gate, op, nil, release)
}

// get is GetGated of op, or, if op is nil, of opErr, an operation without
// a value (Do's, run without a closure to adapt it).
func get[T any](ctx context.Context, h *Hedge, gate func() bool, op func(context.Context) (T, error), opErr func(context.Context) error, release func(T)) (T, error) {
	h.counts.Add(cCalls)
	if h.request != nil {
		h.request.Request()
	}
	d, ok := h.Delay()
	if !ok || h.cfg.MaxAttempts == 1 {
		start := h.now()
		v, err := runOp(ctx, op, opErr)
		if err == nil {
			h.record(start)
		}
		return v, err
	}
	c, _ := h.calls.Get().(*call[T])
	if c == nil {
		c = new(call[T])
		c.fireFunc = c.fire // once per call state, not per call
	}
	c.h, c.parent, c.op, c.opErr, c.release, c.gate, c.delay = h, ctx, op, opErr, release, gate, d
	c.winner = -1
	actx, cancel := context.WithCancel(ctx)
	c.cancels[0] = cancel
	c.started, c.inflight = 1, 1
	c.mu.Lock() // fire may run before AfterFunc returns
	c.timer = time.AfterFunc(d, c.fireFunc)
	c.mu.Unlock()
	v, err := c.first(actx)
	if !c.report(0, v, err, c.start) {
		c.mu.Lock()
		if !c.finished {
			if c.done == nil {
				c.done = make(chan struct{})
			}
			done := c.done
			c.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				c.mu.Lock()
				if !c.finished {
					c.err = ctx.Err()
					c.finish()
				}
				c.mu.Unlock()
			}
		} else {
			c.mu.Unlock()
		}
	}
	// The call is finished, seen so under c.mu: its outcome is written
	// only before that, so it may be read without the lock.
	v, err, pv, panicked := c.val, c.err, c.pv, c.panicked
	if panicked {
		panic(pv)
	}
	if c.quiet {
		c.reset()
		h.calls.Put(c)
	}
	return v, err
}

// now returns the time if h records latencies, and the zero time if not,
// so a fixed delay reads no clock.
func (h *Hedge) now() time.Time {
	if h.hist == nil {
		return time.Time{}
	}
	return time.Now()
}

// record records the latency of a successful attempt that began at start.
func (h *Hedge) record(start time.Time) {
	if h.hist != nil {
		h.hist.add(int64(time.Since(start)))
	}
}

// call is one call of Get that may hedge.
//
// A call's state is reused by a later call of the same Hedge (Hedge.calls)
// only if it is quiet: no goroutine but the caller's can touch it any
// more. finish decides that (see quiet), and get puts the state in the pool
// after it has read the outcome. The attempt's context is not part of the
// state (it is context.WithCancel's own), so a context that an operation
// kept past its call stays cancelled however the state is reused. A state
// that is itself the attempt's Context (cancelled by the call, saving
// WithCancel's two allocations) could not be reused, for that reason, and
// costs operations more: a context they derive from it (as net/http and
// gRPC do) is not a *cancelCtx's child, so it is registered through an
// AfterFunc method, and ours through context.AfterFunc on ctx, measured at
// 3 to 6 allocations and ~250ns more per attempt than WithCancel's.
type call[T any] struct {
	h        *Hedge
	parent   context.Context
	op       func(context.Context) (T, error)
	opErr    func(context.Context) error // op, if op is nil: Do's
	release  func(T)
	gate     func() bool // the call's own gate, if any
	delay    time.Duration
	fireFunc func()      // c.fire, made once per call state
	timer    *time.Timer // a new one each call: see reset
	start    time.Time   // the first attempt's

	mu       sync.Mutex
	started  int // attempts started
	inflight int // attempts running
	cancels  [maxMaxAttempts]context.CancelFunc
	stopped  bool          // no more hedges may start
	firing   bool          // a fire is asking the hooks (Gate, Budget), outside c.mu
	finished bool          // the call's outcome is decided
	done     chan struct{} // closed when finished, if made
	winner   int
	val      T
	err      error
	firstErr error // the first attempt's, if non-fatal
	pv       any   // a hedge's panic value, if panicked
	panicked bool
	rearmed  bool // the timer was armed again after AfterFunc (Reset)
	quiet    bool // no goroutine but the caller's can touch c: see finish
}

// reset readies a quiet call's state for reuse: get sets the rest anew.
// Only what a quiet call used is cleared (its first attempt's cancel, no
// done channel), field by field, not by assigning a zero call, which would
// run a write barrier on every pointer word while the garbage collector
// marks. The timer is not kept: time.AfterFunc makes one in the caller's
// synctest bubble, if any, and a timer made in a bubble cannot be used
// outside it (nor a real one inside it, where time is fake), while a Hedge
// may serve goroutines of several.
func (c *call[T]) reset() {
	var zero T
	c.h, c.parent, c.op, c.opErr, c.release, c.gate, c.timer = nil, nil, nil, nil, nil, nil, nil
	c.cancels[0] = nil
	c.val, c.err, c.firstErr = zero, nil, nil
	c.finished, c.stopped, c.firing, c.rearmed, c.quiet = false, false, false, false, false
}

// runOp runs op, or opErr if op is nil (an operation without a value).
func runOp[T any](ctx context.Context, op func(context.Context) (T, error), opErr func(context.Context) error) (v T, err error) {
	if op != nil {
		return op(ctx)
	}
	return v, opErr(ctx)
}

// first runs the first attempt on the caller's goroutine. If op panics,
// the call ends (every attempt cancelled, no more hedges) before the panic
// continues.
func (c *call[T]) first(ctx context.Context) (v T, err error) {
	ok := false
	defer func() {
		if !ok {
			c.mu.Lock()
			c.inflight--
			if !c.finished {
				c.finish()
			}
			c.mu.Unlock()
		}
	}()
	c.start = c.h.now()
	v, err = runOp(ctx, c.op, c.opErr)
	ok = true
	return v, err
}

// fire starts the next hedge, on the timer's goroutine, and runs it.
func (c *call[T]) fire() {
	limit := c.h.cfg.MaxAttempts
	c.mu.Lock()
	if c.finished || c.stopped || c.started >= limit || c.firing {
		c.mu.Unlock()
		return
	}
	c.firing = true
	c.mu.Unlock()
	// The hooks run outside the lock: they may take their own.
	if g := c.h.cfg.Gate; (g != nil && !g()) || (c.gate != nil && !c.gate()) {
		c.h.gateRefused.Add(1)
		c.stop()
		return
	}
	if b := c.h.cfg.Budget; b != nil && !b.AllowRetry() {
		c.h.counts.Add(cBudget)
		c.stop()
		return
	}
	c.mu.Lock()
	c.firing = false
	if c.finished || c.stopped || c.started >= limit {
		c.mu.Unlock()
		return
	}
	i := c.started
	c.started++
	c.inflight++
	ctx, cancel := context.WithCancel(c.parent)
	c.cancels[i] = cancel
	if c.done == nil {
		c.done = make(chan struct{})
	}
	if c.started < limit {
		c.timer.Reset(c.delay)
		c.rearmed = true
	}
	c.mu.Unlock()
	c.h.counts.Add(cHedges)

	start := c.h.now()
	v, pv, panicked, err := c.run(ctx)
	if panicked {
		c.mu.Lock()
		c.inflight--
		if c.finished {
			c.mu.Unlock()
			panic(pv) // no caller is left to hand it to
		}
		c.pv, c.panicked = pv, true
		c.finish()
		c.mu.Unlock()
		return
	}
	c.report(i, v, err, start)
}

// run runs a hedge, recovering a panic.
func (c *call[T]) run(ctx context.Context) (v T, pv any, panicked bool, err error) {
	panicked = true
	defer func() {
		if panicked {
			pv = recover()
		}
	}()
	v, err = runOp(ctx, c.op, c.opErr)
	panicked = false
	return v, nil, false, err
}

// stop starts no more hedges, and ends the call if no attempt is left.
func (c *call[T]) stop() {
	c.mu.Lock()
	c.stopped, c.firing = true, false
	if !c.finished && c.inflight == 0 {
		c.err = c.firstErr
		c.finish()
	}
	c.mu.Unlock()
}

// report records the outcome of attempt i, begun at start, and reports
// whether the call is finished.
func (c *call[T]) report(i int, v T, err error, start time.Time) bool {
	nonFatal, stop := false, false
	if err != nil {
		nonFatal = c.h.cfg.NonFatal(err) // user code: outside the lock
		stop = nonFatal && errors.Is(err, ErrStopHedging)
	} else {
		c.h.record(start)
	}
	c.mu.Lock()
	c.inflight--
	if c.finished {
		c.mu.Unlock()
		if err == nil && c.release != nil {
			c.release(v) // a loser
		}
		return true
	}
	switch {
	case err == nil:
		c.val, c.winner = v, i
		if i > 0 {
			c.h.counts.Add(cWins)
		}
		c.finish()
	case !nonFatal:
		c.err = err
		c.finish()
	default:
		if i == 0 {
			c.firstErr = err
		}
		if stop {
			c.stopped = true
		}
		if c.inflight == 0 && (c.stopped || c.started >= c.h.cfg.MaxAttempts) {
			c.err = c.firstErr
			c.finish()
		} else if !c.stopped && c.started < c.h.cfg.MaxAttempts && !c.firing {
			// The next hedge now, or after the error's retry-after hint (a
			// pushback, a Retry-After), unless a fire is asking the hooks:
			// it starts that hedge, or stops.
			d, _ := seawall.RetryAfter(err)
			c.timer.Reset(d)
			c.rearmed = true
		}
	}
	finished := c.finished
	c.mu.Unlock()
	return finished
}

// finish decides the call: it stops the timer, cancels every attempt but a
// winner whose value has a release, and wakes the caller. c.mu is held.
//
// It also decides whether c is quiet, safe to reuse once the caller has
// read the outcome: so it is if the timer, armed once by AfterFunc and
// never again, is stopped before it fired (Stop returns true). Then fire
// never ran and never will (an AfterFunc timer runs its func only when it
// fires), so no hedge started (hedges start only in fire: started is 1),
// and no goroutine but the caller's holds c: the first attempt runs on the
// caller's, and release is called only for a hedge's value. A timer that
// fired, or was Reset (a fire that ran may still be running, and may have
// armed it anew), makes c not quiet: it is left to the garbage collector.
func (c *call[T]) finish() {
	c.finished = true
	c.quiet = c.timer.Stop() && !c.rearmed && c.started == 1
	for i := range c.started {
		if i == c.winner && c.release != nil {
			continue // its value may still need its context (an HTTP body)
		}
		c.cancels[i]()
	}
	if c.done != nil {
		close(c.done)
	}
}
