package fault

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/obs"
)

// ErrInjected is the error of an injected failure unless Config.Err says
// otherwise. It is deliberately not a seawall rejection: to a breaker, a
// retry and a fallback it looks like a dependency that failed, which is
// what a game day rehearses.
var ErrInjected = errors.New("fault: injected")

// An Injector injects faults into calls: it delays a fraction of them
// (Config.LatencyRate) by a fixed, optionally jittered latency, and fails
// a fraction of them (Config.ErrorRate) with an error without running
// them, for game days and tests.
//
// An Injector is off until [Injector.Enable] (or Config.Enabled) turns it
// on, and [Injector.Disable] turns it off again at any time; while it is
// off, a call costs one atomic load and nothing else. While it is on, each
// call that Config.Select picks (every call, by default) is first delayed,
// with probability LatencyRate, then failed, with probability ErrorRate; a
// call can be both delayed and failed, as a slow dependency that finally
// errors. The random numbers come from Config.Rand, so that tests are
// reproducible.
//
// The entry points are [Injector.Do] (a seawall.Policy) and
// [Injector.Apply], the primitive that middleware uses: it waits the
// injected delay and returns the injected error, leaving the call to the
// caller.
//
// An Injector is safe for concurrent use by multiple goroutines.
type Injector struct {
	on atomic.Bool // read on every call; written only by Enable and Disable

	errRate, latRate float64
	err              error
	latency, jitter  time.Duration
	sel              func(context.Context) bool
	rnd              func() float64

	// Counted only while enabled, on the injection path: no padding, as
	// the disabled path never touches them.
	calls, selected, delays, errs atomic.Uint64

	slot obs.Slot // the registry that named this injector, if any
}

// New returns an Injector configured by cfg, or an error naming the first
// invalid field and its value.
func New(cfg Config) (*Injector, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	i := &Injector{
		errRate: c.ErrorRate, latRate: c.LatencyRate, err: c.Err,
		latency: c.Latency, jitter: c.Jitter, sel: c.Select, rnd: c.Rand,
	}
	if i.rnd == nil {
		i.rnd = rand.Float64
	}
	i.on.Store(c.Enabled)
	return i, nil
}

// Enable turns fault injection on.
func (i *Injector) Enable() { i.on.Store(true) }

// Disable turns fault injection off: calls that start after it returns
// get no fault. A call already waiting out an injected delay finishes its
// wait.
func (i *Injector) Disable() { i.on.Store(false) }

// Enabled reports whether fault injection is on.
func (i *Injector) Enabled() bool { return i.on.Load() }

// Apply decides the faults of one call and applies the delay: it returns
// nil at once if the Injector is off or Select does not pick the call;
// otherwise it waits the injected delay, if any, and returns the injected
// error, if any, or nil. If ctx ends during the delay it returns ctx.Err()
// at once, as a caller of a slow dependency sees its deadline pass; the
// delay is not shortened to fit the deadline, since a real slow dependency
// would not be either. A caller runs its operation only if Apply returns
// nil.
func (i *Injector) Apply(ctx context.Context) error {
	if !i.on.Load() {
		return nil
	}
	return i.inject(ctx)
}

// inject is Apply's path while the Injector is on.
func (i *Injector) inject(ctx context.Context) error {
	i.calls.Add(1)
	if i.sel != nil && !i.sel(ctx) {
		return nil
	}
	i.selected.Add(1)
	if i.latRate > 0 && i.rnd() < i.latRate {
		i.delays.Add(1)
		if err := wait(ctx, i.delay()); err != nil {
			return err
		}
	}
	if i.errRate > 0 && i.rnd() < i.errRate {
		i.errs.Add(1)
		return i.err
	}
	return nil
}

// delay returns the latency of one delayed call, with its jitter.
func (i *Injector) delay() time.Duration {
	d := i.latency
	if i.jitter > 0 {
		d += time.Duration(i.rnd() * float64(i.jitter))
	}
	return d
}

// wait waits d, or until ctx ends, and returns ctx.Err() if it ended
// first.
func wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do runs op with the faults of [Injector.Apply]: it returns Apply's error
// without running op if there is one, and otherwise runs op(ctx) and
// returns its error unchanged. It satisfies seawall.Policy; while the
// Injector is off it costs one atomic load more than op.
func (i *Injector) Do(ctx context.Context, op func(context.Context) error) error {
	if i.on.Load() {
		if err := i.inject(ctx); err != nil {
			return err
		}
	}
	return op(ctx)
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy, so that a pipeline through the
// injector allocates nothing.
func (i *Injector) DoChain(ctx context.Context, c seawall.Chain) error {
	if i.on.Load() {
		if err := i.inject(ctx); err != nil {
			return err
		}
	}
	return c.Run(ctx)
}

// Metrics is a snapshot of an Injector's state and of its counters since it
// was created. Calls made while it was off are not counted.
type Metrics struct {
	Enabled bool `json:"enabled"` // whether injection is on (see [Injector.Enabled])
	// Calls counts the calls seen while enabled; Selected those of them
	// that Config.Select picked (all of them without Select).
	Calls    uint64 `json:"calls"`
	Selected uint64 `json:"selected"`
	// Delays counts the delays injected (including those cut short by
	// the end of a call's context), Errors the errors injected.
	Delays uint64 `json:"delays"`
	Errors uint64 `json:"errors"`
}

// Metrics returns a snapshot of the injector's state and counters, read
// from atomics without stopping calls.
func (i *Injector) Metrics() Metrics {
	return Metrics{
		Enabled:  i.on.Load(),
		Calls:    i.calls.Load(),
		Selected: i.selected.Load(),
		Delays:   i.delays.Load(),
		Errors:   i.errs.Load(),
	}
}

// Registration is how package registry names the injector. Its result is
// opaque outside this module.
func (i *Injector) Registration() *obs.Slot { return &i.slot }
