package timeout

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/deadline"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrTimeout is matched, with errors.Is, by the error a [Timeout] returns
// when its timeout expires: an [*Error], which matches
// context.DeadlineExceeded too.
var ErrTimeout = errors.New("timeout: timed out")

// Error is the error a [Timeout] returns when its timeout expires before
// the operation succeeds. It matches [ErrTimeout] and
// context.DeadlineExceeded with errors.Is, and unwraps to the operation's
// own error (nil in Abandon mode, where the operation had not returned).
type Error struct {
	Timeout time.Duration // the configured timeout
	Err     error         // the operation's error, or nil if it was abandoned
}

// Error returns "timeout: timed out after <Timeout>", followed by the
// operation's error unless that is (or wraps) context.DeadlineExceeded.
func (e *Error) Error() string {
	if e.Err == nil || errors.Is(e.Err, context.DeadlineExceeded) {
		return fmt.Sprintf("timeout: timed out after %v", e.Timeout)
	}
	return fmt.Sprintf("timeout: timed out after %v: %v", e.Timeout, e.Err)
}

// Is reports whether target is ErrTimeout or context.DeadlineExceeded (or
// the internal sentinel by which retry.DefaultRetryable knows a timeout).
func (e *Error) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded || target == deadline.ErrAttempt
}

// Unwrap returns the operation's error.
func (e *Error) Unwrap() error { return e.Err }

// A Timeout gives each call a deadline: Do runs the operation with a
// context derived from the caller's, whose deadline is Config.Timeout from
// the start of the call, or the caller's own deadline if that is earlier.
// Outermost in a seawall.Pipeline it bounds the whole call, retries
// included; inside a retry it bounds each attempt.
//
// When the timeout expires before the operation succeeds, Do returns an
// [*Error], which matches [ErrTimeout] and context.DeadlineExceeded. The
// expiry is told by the clock against the derived deadline, not only by
// the derived context's error, so an operation that notices the deadline
// before the context's timer fires (a server answering DEADLINE_EXCEEDED)
// still counts as timed out. When the caller's context ended first
// (cancelled, or its deadline, being the earlier, passed), Do returns
// ctx.Err() unchanged. An operation that succeeds returns nil, even if it
// finished after the deadline. Any other error of the operation is returned
// unchanged.
//
// By default Do waits for the operation to return, on the caller's
// goroutine; with Config.Abandon it returns at once on expiry and leaves
// the operation running (see [Config]).
//
// The zero value is not usable; create one with [New]. A Timeout is safe
// for concurrent use by multiple goroutines.
type Timeout struct {
	d       time.Duration
	abandon bool

	counts  shard.Counters // per-P: cCalls, cTimedOut, cAbandoned
	running atomic.Int64   // abandon mode: operations whose goroutine has not returned

	slot obs.Slot // the registry that named this timeout, if any
}

// Counters of Timeout.counts.
const (
	cCalls = iota
	cTimedOut
	cAbandoned
)

// New returns a Timeout configured by cfg, or an error naming the field of
// cfg that is invalid.
func New(cfg Config) (*Timeout, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Timeout{d: cfg.Timeout, abandon: cfg.Abandon}
	t.counts.Init()
	return t, nil
}

// Timeout returns the configured timeout.
func (t *Timeout) Timeout() time.Duration { return t.d }

// Do runs op with a context whose deadline is the timeout (or the caller's,
// if earlier), and returns nil if op succeeds, an [*Error] if the timeout
// expired first, ctx.Err() if the caller's context ended first, and op's
// error otherwise. If op panics, the panic continues on the caller's
// goroutine (in Abandon mode, too, unless the call was abandoned: then it
// crashes the program, as any unrecovered panic on a goroutine does).
func (t *Timeout) Do(ctx context.Context, op func(context.Context) error) error {
	t.counts.Add(cCalls)
	if t.abandon {
		return t.doAbandon(ctx, op)
	}
	dctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	if err := op(dctx); err != nil {
		return t.failed(ctx, dctx, err)
	}
	return nil
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy. (Do does not call it: a
// closure passed to Do would then escape to the heap.)
func (t *Timeout) DoChain(ctx context.Context, c seawall.Chain) error {
	t.counts.Add(cCalls)
	if t.abandon {
		return t.doAbandon(ctx, c.Run)
	}
	dctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	if err := c.Run(dctx); err != nil {
		return t.failed(ctx, dctx, err)
	}
	return nil
}

// failed returns the error of a call whose operation returned err != nil.
// It runs before dctx is cancelled.
func (t *Timeout) failed(ctx, dctx context.Context, err error) error {
	if deadline.Expired(ctx, dctx) {
		t.counts.Add(cTimedOut)
		return &Error{Timeout: t.d, Err: err}
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// States of an abandon-mode call, between the caller and the goroutine
// running its operation: whichever moves it from running wins.
const (
	stRunning   = iota
	stReturned  // the operation returned; its result is in the channel
	stAbandoned // the caller returned without it
)

// call is one abandon-mode call, shared by the caller and the goroutine.
type call struct {
	state atomic.Int32
	done  chan result // buffered: the goroutine never blocks on it
}

type result struct {
	err      error
	panicked bool
	p        any // the panic value, if panicked
}

func (t *Timeout) doAbandon(ctx context.Context, op func(context.Context) error) error {
	dctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	c := &call{done: make(chan result, 1)}
	t.running.Add(1)
	go t.run(c, dctx, op)
	select {
	case r := <-c.done:
		return t.returned(ctx, dctx, r)
	case <-dctx.Done():
	}
	if !c.state.CompareAndSwap(stRunning, stAbandoned) {
		return t.returned(ctx, dctx, <-c.done) // it returned at the same moment
	}
	t.counts.Add(cAbandoned)
	if deadline.Expired(ctx, dctx) {
		t.counts.Add(cTimedOut)
		return &Error{Timeout: t.d}
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	// The caller's deadline, equal to ours, rules; its context will say
	// so an instant later, when its own timer runs.
	return dctx.Err()
}

// run runs op for call c on its own goroutine.
func (t *Timeout) run(c *call, dctx context.Context, op func(context.Context) error) {
	r := result{panicked: true}
	defer func() {
		if r.panicked {
			r.p = recover()
		}
		// Before the result is handed over, so that a caller that has
		// returned never sees its own operation counted as running.
		t.running.Add(-1)
		if c.state.CompareAndSwap(stRunning, stReturned) {
			c.done <- r
			return
		}
		if r.panicked {
			panic(r.p) // abandoned: no caller to hand it to
		}
	}()
	r.err = op(dctx)
	r.panicked = false
}

// returned is the outcome of an abandon-mode call whose operation returned.
func (t *Timeout) returned(ctx, dctx context.Context, r result) error {
	if r.panicked {
		panic(r.p)
	}
	if r.err == nil {
		return nil
	}
	return t.failed(ctx, dctx, r.err)
}

// Metrics is a snapshot of a timeout's counters since it was created.
type Metrics struct {
	// Timeout is the configured timeout (in JSON, integer nanoseconds).
	Timeout time.Duration `json:"timeout"`
	// Calls counts calls of Do and DoChain.
	Calls uint64 `json:"calls"`
	// TimedOut counts calls that returned an [*Error]: the timeout expired
	// before the operation succeeded.
	TimedOut uint64 `json:"timedOut"`
	// Abandoned counts, in Abandon mode, calls that returned before their
	// operation did, on expiry or because the caller's context ended.
	Abandoned uint64 `json:"abandoned"`
	// Running is, in Abandon mode, the number of operations whose
	// goroutine has not returned yet: those of calls in progress and
	// those abandoned and still running.
	Running int64 `json:"running"`
}

// Metrics returns a snapshot of the timeout's counters, read from atomics
// without stopping calls; counters of calls in progress may be one behind.
func (t *Timeout) Metrics() Metrics {
	return Metrics{
		Timeout:   t.d,
		Calls:     t.counts.Load(cCalls),
		TimedOut:  t.counts.Load(cTimedOut),
		Abandoned: t.counts.Load(cAbandoned),
		Running:   t.running.Load(),
	}
}

// Registration is how package registry names the timeout. Its result is
// opaque outside this module.
func (t *Timeout) Registration() *obs.Slot { return &t.slot }
