package retry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/deadline"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrDeadline is the reason retries stop when the next attempt could only
// start at or after the context's deadline (or MaxElapsed): retrying would
// only waste the wait.
var ErrDeadline = errors.New("retry: the next attempt would start past the deadline")

// DefaultRetryable is the default [Config.Retryable]. It does not retry
// context errors (the caller gave up or ran out of time), a local open
// circuit breaker (seawall.ErrCircuitOpen, whatever its hint: callers that
// waited it out would all probe the breaker at the same instant), nor
// other rejections by local policies (seawall.ErrRejected) that carry no
// retry-after hint. Everything else is retried, including a rejection with
// a hint, such as a rate limiter's, and the expiry of a timeout policy
// inside the retry (a timeout.Error: it matches context.DeadlineExceeded,
// but the attempt ran out of its own time, not the caller's; the loop stops
// anyway once the caller's context has ended). (Errors marked seawall.Permanent are
// never retried, whatever the classification says.)
//
// To wait out an open breaker after all, use a Retryable that accepts it:
//
//	Retryable: func(err error) bool {
//		return errors.Is(err, seawall.ErrCircuitOpen) || retry.DefaultRetryable(err)
//	}
func DefaultRetryable(err error) bool {
	if errors.Is(err, deadline.ErrAttempt) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, seawall.ErrRejected) {
		if errors.Is(err, seawall.ErrCircuitOpen) {
			return false
		}
		_, hinted := seawall.RetryAfter(err)
		return hinted
	}
	return true
}

// A Retry runs an operation again when it fails with a retryable error,
// waiting between attempts: exponential delays with jitter (or constant, or
// a function, or a cenkalti/backoff policy), at least as long as a server's
// retry-after hint, never past the context's deadline. A retry budget shared
// by the calls bounds retries to a share of requests, so that many callers
// retrying at once cannot multiply the load on a struggling dependency.
//
// Use [Retry.Do] (which satisfies seawall.Policy), or the loop form
// [Retry.Loop], which keeps the call in the caller's own function (no
// closure; handy when the call returns several values). On the success path
// neither takes a lock nor allocates (unless AttemptTimeout is set: a
// context with a timeout allocates), nor reads the clock unless MaxElapsed
// or AttemptTimeout is set: beyond the call itself, what it costs is the
// budget's per-CPU count of the request (and, in tokens mode, of the
// success). BENCHMARKS.md has the measured figures.
//
// A Retry is safe for concurrent use by multiple goroutines.
type Retry struct {
	cfg    Config
	budget *Budget
	// fast: Do may run the first attempt directly (no attempt timeout, no
	// MaxElapsed clock).
	fast     bool
	timeouts bool      // AttemptTimeout is set
	tokens   bool      // the budget counts successes (tokens mode)
	epoch    time.Time // r.now() is the time since

	retries, gaveUp atomic.Uint64
	gaveUpBy        [numReasons]atomic.Uint64

	slot obs.Slot // the registry that named this retry, if any
}

// New returns a Retry configured by cfg, or an error naming the first
// invalid field of cfg.
func New(cfg Config) (*Retry, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Retry{cfg: cfg, budget: cfg.SharedBudget, epoch: time.Now()}
	if r.budget == nil {
		if r.budget, err = NewBudget(cfg.Budget); err != nil {
			return nil, err
		}
	}
	r.fast = cfg.AttemptTimeout == 0 && cfg.MaxElapsed == 0
	r.timeouts = cfg.AttemptTimeout > 0
	r.tokens = r.budget != nil && r.budget.tokens
	return r, nil
}

// Budget returns the retry budget r uses, nil if it has none.
func (r *Retry) Budget() *Budget { return r.budget }

// Do runs op, and runs it again while it fails with a retryable error, the
// attempts, the budget and the context allow. It returns nil on success;
// otherwise an [*Error] saying how many attempts were made and wrapping the
// last attempt's error (and the reason retries stopped early, if one), so
// errors.Is and errors.As see both. A panic in op continues after Do
// releases the attempt's context. Do satisfies seawall.Policy.
func (r *Retry) Do(ctx context.Context, op func(context.Context) error) error {
	if r.fast {
		err := op(ctx)
		if err == nil {
			if b := r.budget; b != nil {
				// countSuccess, written out: the compiler would not
				// inline it, and this is the hottest path.
				i := shard.Pin()
				b.counts.AddPinned(i, cRequests)
				if b.tokens {
					b.counts.AddPinned(i, cSuccesses)
				}
				shard.Unpin()
			}
			return nil
		}
		return r.retryAfterFirst(ctx, op, err)
	}
	l := r.Loop(ctx)
	return l.run(op)
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function, once per attempt: it satisfies seawall.ChainPolicy, so that a
// pipeline through the retry allocates nothing on the success path. (Do
// does not call it: a closure passed to Do would then escape to the heap.)
func (r *Retry) DoChain(ctx context.Context, c seawall.Chain) error {
	if r.fast {
		err := c.Run(ctx)
		if err == nil {
			r.countSuccess()
			return nil
		}
		return r.retryAfterFirstChain(ctx, c, err)
	}
	l := r.Loop(ctx)
	return l.runChain(c)
}

// countSuccess counts a request whose first attempt succeeded in the
// budget: b.Request and b.Success in one pinned section.
func (r *Retry) countSuccess() {
	if b := r.budget; b != nil {
		i := shard.Pin()
		b.counts.AddPinned(i, cRequests)
		if b.tokens {
			b.counts.AddPinned(i, cSuccesses)
		}
		shard.Unpin()
	}
}

// retryAfterFirst continues Do after a fast first attempt failed with err.
// (It is a function of its own, so that the Loop stays off Do's stack
// frame on the success path.)
func (r *Retry) retryAfterFirst(ctx context.Context, op func(context.Context) error, err error) error {
	l := r.afterFirst(ctx, err)
	return l.run(op)
}

// retryAfterFirstChain is retryAfterFirst for DoChain.
func (r *Retry) retryAfterFirstChain(ctx context.Context, c seawall.Chain, err error) error {
	l := r.afterFirst(ctx, err)
	return l.runChain(c)
}

// afterFirst returns the loop that continues after a fast first attempt
// failed with err.
func (r *Retry) afterFirst(ctx context.Context, err error) Loop {
	r.budget.Request()
	l := Loop{r: r, ctx: ctx, attempt: 1}
	l.Record(err)
	return l
}

func (l *Loop) run(op func(context.Context) error) error {
	defer l.releaseAttempt() // if op panics
	for l.Next() {
		l.Record(op(l.Context()))
	}
	return l.Err()
}

func (l *Loop) runChain(c seawall.Chain) error {
	defer l.releaseAttempt() // if the attempt panics
	for l.Next() {
		l.Record(c.Run(l.Context()))
	}
	return l.Err()
}

// A Loop is the loop form of a Retry: a small value that lives on the
// caller's stack, so the attempt is written in the caller's own function
// with no closure. On the success path it allocates nothing (unless
// AttemptTimeout is set: a context with a timeout allocates).
//
//	l := r.Loop(ctx)
//	for l.Next() {
//		resp, err = call(l.Context())
//		l.Record(err)
//	}
//	if err := l.Err(); err != nil { … }
//
// Each Next that returns true must be followed by exactly one Record. A
// Loop is used by one goroutine and must not be copied after first use.
type Loop struct {
	r        *Retry
	max      int // MaxAttempts for this loop; 0: the Retry's
	ctx      context.Context
	st       *loopState // what failures and attempt timeouts need; nil until then
	start    int64      // when the loop began, in r's clock, for MaxElapsed
	attempt  int        // attempts begun
	done     bool
	recorded bool
}

// loopState is the part of a Loop only failures and attempt timeouts need,
// allocated when first needed so that the success path stays small.
type loopState struct {
	actx   context.Context // the current attempt's context
	cancel context.CancelFunc
	delay  time.Duration // before the next attempt, set by Record
	why    seawall.DelayReason
	prev   time.Duration // the previous decorrelated delay; 0 before the first
	bo     BackOff
	last   error         // the last attempt's error
	final  error         // the outcome, once done
	waited time.Duration // the delays waited before retries, in all
}

func (l *Loop) state() *loopState {
	if l.st == nil {
		l.st = new(loopState)
	}
	return l.st
}

// Loop starts a loop of attempts under r's policy; see [Loop].
func (r *Retry) Loop(ctx context.Context) (l Loop) {
	l.r, l.ctx = r, ctx
	l.begin()
	return l
}

func (l *Loop) begin() {
	l.r.budget.Request()
	if l.r.cfg.MaxElapsed > 0 {
		l.start = l.r.now()
	}
}

// now returns the time since r was made, in nanoseconds: a monotonic clock
// cheaper to read than time.Now.
func (r *Retry) now() int64 { return int64(time.Since(r.epoch)) }

// Next reports whether to make an attempt, waiting first, before a retry,
// for the delay the previous Record decided. It returns false when the loop
// is over: the last attempt succeeded, the error was not retryable, the
// attempts, the budget or the time ran out, or the context ended during the
// wait (Next returns promptly then). [Loop.Err] tells which.
func (l *Loop) Next() bool {
	if l.attempt == 0 && !l.r.timeouts {
		l.attempt = 1 // the first attempt, without an attempt timeout
		return true
	}
	return l.next()
}

func (l *Loop) next() bool {
	if l.done {
		return false
	}
	if l.attempt > 0 {
		if !l.recorded {
			panic("retry: Loop.Next called again without Record")
		}
		if d := l.st.delay; d > 0 {
			if !l.wait(d) {
				return false
			}
			l.st.waited += d
		}
	}
	l.attempt++
	l.recorded = false
	if d := l.r.cfg.AttemptTimeout; d > 0 {
		st := l.state()
		st.actx, st.cancel = context.WithTimeout(l.ctx, d)
	}
	return true
}

// wait sleeps for d unless the context ends first, and reports whether the
// loop goes on.
func (l *Loop) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		l.finish(ReasonContext, l.ctx.Err())
		return false
	}
}

// Context returns the context for the current attempt: the loop's context,
// with the attempt timeout if one is configured.
func (l *Loop) Context() context.Context {
	if l.st != nil && l.st.actx != nil {
		return l.st.actx
	}
	return l.ctx
}

// Attempt returns the number of attempts begun so far (1 during the first).
func (l *Loop) Attempt() int { return l.attempt }

// SetMaxAttempts sets the number of attempts, including the first, for
// this loop only, in place of the Retry's MaxAttempts: a per-call override.
// Call it before the first Next. An n below 1 is taken as 1, above 1000 as
// 1000.
func (l *Loop) SetMaxAttempts(n int) { l.max = min(max(n, 1), maxAttemptsLimit) }

func (l *Loop) maxAttempts() int {
	if l.max > 0 {
		return l.max
	}
	return l.r.cfg.MaxAttempts
}

// Delay returns the delay that the last Record decided to wait before
// the next attempt, and what decided it: the backoff, a retry-after hint
// of the attempt's error that raised it (seawall.RetryAfter), or an exact
// pushback (seawall.Pushback). It is 0 and seawall.DelayNone before the
// first Record, and once Record decided not to retry (Done).
func (l *Loop) Delay() (time.Duration, seawall.DelayReason) {
	if l.done || l.st == nil {
		return 0, seawall.DelayNone
	}
	return l.st.delay, l.st.why
}

// Done reports whether the loop is over. After Record, it is true if
// Record decided not to retry (the attempt succeeded, or its error is not
// retried, or retries ran out), so that a caller holding the attempt's
// result (an HTTP response) knows to keep it, and false if Next will wait
// and make another attempt, unless the context ends during the wait.
func (l *Loop) Done() bool { return l.done }

// Record records the outcome of the current attempt and decides whether,
// and after how long, to retry.
func (l *Loop) Record(err error) {
	if err == nil && l.st == nil && !l.r.tokens {
		l.recorded, l.done = true, true // a success with nothing to clean up or count
		return
	}
	l.record(err)
}

func (l *Loop) record(err error) {
	l.recorded = true
	if err == nil && l.st == nil {
		// A first success in tokens mode: count it, without allocating
		// the state a failure would need.
		l.r.budget.Success()
		l.done = true
		return
	}
	st := l.state()
	// The attempt's own deadline ended it, by its timer or by the clock
	// (an operation that reported the deadline before the timer ran): the
	// check package timeout makes too.
	attemptTimedOut := st.cancel != nil && deadline.Expired(l.ctx, st.actx)
	l.releaseAttempt()
	r := l.r
	if err == nil {
		r.budget.Success()
		l.done, st.final, st.last = true, nil, nil
		l.retried("")
		return
	}
	st.last = err
	switch {
	case l.ctx.Err() != nil:
		l.finish(ReasonContext, l.ctx.Err())
		return
	case err == ErrResult: // a value the caller rejected: retried, whatever Retryable says
	case seawall.IsPermanent(err) || !attemptTimedOut && !r.cfg.Retryable(err):
		l.finish(ReasonNotRetryable, nil)
		return
	}
	r.budget.Failure()
	if l.attempt >= l.maxAttempts() {
		l.finish(ReasonAttempts, nil)
		return
	}
	d, why, ok := l.nextDelay(err)
	if !ok {
		l.finish(ReasonStopped, nil)
		return
	}
	if deadline, has := l.deadline(); has && !time.Now().Add(d).Before(deadline) {
		l.finish(ReasonDeadline, ErrDeadline)
		return
	}
	if !r.budget.AllowRetry() {
		l.finish(ReasonBudget, ErrBudgetExhausted)
		return
	}
	r.retries.Add(1)
	st.delay, st.why = d, why
	if r.cfg.OnRetry != nil {
		r.cfg.OnRetry(l.attempt, err, d)
	}
}

// deadline returns the earlier of the context's deadline and the end of
// MaxElapsed.
func (l *Loop) deadline() (time.Time, bool) {
	deadline, has := l.ctx.Deadline()
	if me := l.r.cfg.MaxElapsed; me > 0 {
		if end := time.Now().Add(time.Duration(l.start + int64(me) - l.r.now())); !has || end.Before(deadline) {
			deadline, has = end, true
		}
	}
	return deadline, has
}

// nextDelay returns the delay before the next attempt and what decided
// it, or false if the delay policy says to stop.
func (l *Loop) nextDelay(err error) (time.Duration, seawall.DelayReason, bool) {
	c := &l.r.cfg
	st := l.st
	var d time.Duration
	switch n := l.attempt; {
	case c.BackOff != nil:
		if st.bo == nil {
			st.bo = c.BackOff()
			st.bo.Reset()
		}
		d = st.bo.NextBackOff()
	case c.DelayFunc != nil:
		d = c.DelayFunc(n, err)
	default:
		d = l.exponential(n)
	}
	if d < 0 {
		return 0, seawall.DelayNone, false
	}
	if p, ok := seawall.Pushback(err); ok {
		return min(p, c.MaxHint), seawall.DelayPushback, true
	}
	if hint, ok := seawall.RetryAfter(err); ok {
		if h := min(hint, c.MaxHint); h > d {
			return h, seawall.DelayRetryAfter, true
		}
	}
	return d, seawall.DelayBackoff, true
}

// exponential returns the jittered exponential delay before retry n.
func (l *Loop) exponential(n int) time.Duration {
	c := &l.r.cfg
	if c.Jitter == DecorrelatedJitter {
		// AWS's formula: previous starts at Delay (not 0, which would make
		// the first delay exactly Delay for every caller).
		prev := max(l.st.prev, c.Delay)
		hi := time.Duration(math.MaxInt64) // 3 × prev, saturated
		if prev <= math.MaxInt64/3 {
			hi = 3 * prev
		}
		d := min(c.Delay+randN(hi-c.Delay), c.MaxDelay)
		l.st.prev = d
		return d
	}
	base := c.MaxDelay
	if f := float64(c.Delay) * math.Pow(c.Multiplier, float64(n-1)); f < float64(c.MaxDelay) {
		base = time.Duration(f)
	}
	switch c.Jitter {
	case FullJitter:
		return randN(base)
	case EqualJitter:
		return base/2 + randN(base-base/2)
	}
	return base
}

// randN returns a uniformly random duration in [0, d].
func randN(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if d == math.MaxInt64 {
		return time.Duration(rand.Int64())
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// finish ends the loop with the last attempt's error and the reason
// retrying stopped, if any.
func (l *Loop) finish(why Reason, reason error) {
	l.done = true
	l.r.gaveUp.Add(1)
	l.r.gaveUpBy[why].Add(1)
	st := l.state()
	st.final = &Error{Attempts: l.attempt, Err: st.last, Reason: reason}
	l.retried(why.String())
}

// retried tells the registry, if one named the Retry, of a call that ended
// after retries.
func (l *Loop) retried(outcome string) {
	if l.attempt > 1 {
		obs.Emit(&l.r.slot, obs.Event{Type: obs.CallRetried, Count: l.attempt - 1, Duration: l.st.waited, Detail: outcome})
	}
}

// Reason is why a call gave up: the reasons counted in [Metrics.GaveUpBy].
type Reason uint8

const (
	// ReasonNotRetryable: the last error was not retryable (or permanent).
	ReasonNotRetryable Reason = iota
	// ReasonAttempts: MaxAttempts (or a per-call override) were made.
	ReasonAttempts
	// ReasonStopped: BackOff or DelayFunc said to stop.
	ReasonStopped
	// ReasonDeadline: the next attempt would have started past the
	// deadline ([ErrDeadline]).
	ReasonDeadline
	// ReasonBudget: the retry budget refused the retry
	// ([ErrBudgetExhausted]).
	ReasonBudget
	// ReasonContext: the call's context ended.
	ReasonContext
	numReasons
)

var reasonNames = [numReasons]string{"not_retryable", "attempts_exhausted", "stopped", "deadline", "budget_exhausted", "canceled"}

// String returns the reason's name, as metrics label it: "not_retryable",
// "attempts_exhausted", "stopped", "deadline", "budget_exhausted" or
// "canceled".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// GaveUpBy counts the calls that gave up, by [Reason]: GaveUpBy[ReasonBudget]
// (in JSON, an object keyed by the reasons' names).
type GaveUpBy [numReasons]uint64

// MarshalJSON encodes the counts as an object keyed by reason name.
func (g GaveUpBy) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, n := range g {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, reasonNames[i]...)
		b = append(b, '"', ':')
		b = strconv.AppendUint(b, n, 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (g *GaveUpBy) UnmarshalJSON(b []byte) error {
	var counts map[string]uint64
	if err := json.Unmarshal(b, &counts); err != nil {
		return err
	}
	*g = GaveUpBy{}
	for k, n := range counts {
		i := slices.Index(reasonNames[:], k)
		if i < 0 {
			return fmt.Errorf("retry: gave up by: unknown reason %q", k)
		}
		g[i] = n
	}
	return nil
}

func (l *Loop) releaseAttempt() {
	if l.st != nil && l.st.cancel != nil {
		l.st.cancel()
		l.st.cancel, l.st.actx = nil, nil
	}
}

// Err returns the loop's outcome once Next has returned false: nil if the
// last attempt succeeded, otherwise an [*Error].
func (l *Loop) Err() error {
	if l.st == nil {
		return nil
	}
	return l.st.final
}

// Error is the error of a call whose retries ended without success. It
// wraps the last attempt's error and, if retrying stopped early, the reason:
// ErrBudgetExhausted, ErrDeadline, or the context's error.
type Error struct {
	Attempts int   // attempts made
	Err      error // the last attempt's error
	Reason   error // why retrying stopped early; nil if the error was not retryable or the attempts ran out
}

func (e *Error) Error() string {
	s := "attempts"
	if e.Attempts == 1 {
		s = "attempt"
	}
	if e.Reason != nil {
		return fmt.Sprintf("retry: %d %s, stopped: %v; last error: %v", e.Attempts, s, e.Reason, e.Err)
	}
	return fmt.Sprintf("retry: %d %s; last error: %v", e.Attempts, s, e.Err)
}

// Unwrap returns the last attempt's error and the reason, so errors.Is(err,
// ErrBudgetExhausted) and errors.Is(err, lastErr) both hold.
func (e *Error) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Reason}
}

// Metrics is a snapshot of a Retry's counters.
type Metrics struct {
	Retries uint64 `json:"retries"` // retries made (attempts after the first)
	GaveUp  uint64 `json:"gaveUp"`  // calls that ended in an error
	// GaveUpBy splits GaveUp by the reason retrying stopped.
	GaveUpBy GaveUpBy `json:"gaveUpBy"`
	// Budget is the snapshot of the Retry's budget, which other Retry
	// values may share (Config.SharedBudget); its Requests count the calls
	// of them all.
	Budget BudgetMetrics `json:"budget"`
}

// Metrics returns a snapshot of r's counters and of its budget's (which
// another Retry may share).
func (r *Retry) Metrics() Metrics {
	m := Metrics{Retries: r.retries.Load(), GaveUp: r.gaveUp.Load(), Budget: r.budget.Metrics()}
	for i := range r.gaveUpBy {
		m.GaveUpBy[i] = r.gaveUpBy[i].Load()
	}
	return m
}

// Registration is how package registry names the retry and hears of the
// calls that retried. Its result is opaque outside this module.
func (r *Retry) Registration() *obs.Slot { return &r.slot }
