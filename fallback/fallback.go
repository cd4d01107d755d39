package fallback

import (
	"context"
	"sync/atomic"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/obs"
)

// A Fallback runs an operation and, when it fails with an error that
// Config.Handles accepts (by default any error but a cancelled context),
// returns what Config.Fallback returns in its place: a cached or stale
// value, a default, a secondary's answer, or an error.
//
// The entry point is [Fallback.Get]. For calls that return only an error,
// and to use a fallback as a seawall.Policy, see [Policy]. A panic in the
// operation or in the fallback function is not recovered.
//
// On the success path Get calls the operation and compares its error with
// nil, nothing more: it allocates nothing and writes no shared memory. Only
// calls that fall back are counted ([Fallback.Metrics]).
//
// A Fallback is safe for concurrent use by multiple goroutines.
type Fallback[T any] struct {
	fallback func(context.Context, error) (T, error)
	core
}

// core is what Fallback and Policy share: the classification, the
// counters and the registry slot.
type core struct {
	handles          func(error) bool
	fellBack, failed atomic.Uint64
	slot             obs.Slot // the registry that named this fallback, if any
}

// New returns a Fallback configured by cfg, or an error naming the invalid
// field ("fallback: Fallback is nil").
func New[T any](cfg Config[T]) (*Fallback[T], error) {
	if cfg.Fallback == nil {
		return nil, errNoFallback
	}
	return &Fallback[T]{fallback: cfg.Fallback, core: core{handles: handlesOrDefault(cfg.Handles)}}, nil
}

// Get runs op with ctx and returns its value and error, unless op fails
// with an error that Config.Handles accepts: then it returns what
// Config.Fallback returns, given ctx and op's error. A panic in op or in
// the fallback function continues to the caller.
func (f *Fallback[T]) Get(ctx context.Context, op func(context.Context) (T, error)) (T, error) {
	v, err := op(ctx)
	if err == nil || !f.handles(err) {
		return v, err
	}
	return f.fallBack(ctx, err)
}

// fallBack calls the fallback function for a call that failed with err,
// and counts it. (A function of its own, so that its defer stays off
// Get's success path.)
func (f *Fallback[T]) fallBack(ctx context.Context, err error) (v T, ferr error) {
	f.fellBack.Add(1)
	ok := false
	defer func() {
		if !ok {
			f.failed.Add(1) // the fallback failed, or panicked
		}
	}()
	v, ferr = f.fallback(ctx, err)
	ok = ferr == nil
	return v, ferr
}

// A Policy is the error-only form of a [Fallback], for calls that return
// only an error: when the call fails with an error that
// PolicyConfig.Handles accepts, Do returns what PolicyConfig.Fallback
// returns in its place. A Policy is a seawall.Policy and a
// seawall.ChainPolicy, so it can stand first in a seawall.Pipeline.
//
// (A Fallback[T] is not a seawall.Policy: a Policy's operation returns no
// value, so a fallback's value would have nowhere to go.)
//
// A Policy is safe for concurrent use by multiple goroutines.
type Policy struct {
	fallback func(context.Context, error) error
	core
}

// NewPolicy returns a Policy configured by cfg, or an error naming the
// invalid field ("fallback: Fallback is nil").
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	if cfg.Fallback == nil {
		return nil, errNoFallback
	}
	return &Policy{fallback: cfg.Fallback, core: core{handles: handlesOrDefault(cfg.Handles)}}, nil
}

// Do runs op with ctx and returns its error, unless that error is one
// PolicyConfig.Handles accepts: then it returns what PolicyConfig.Fallback
// returns, given ctx and op's error. Do satisfies seawall.Policy.
func (p *Policy) Do(ctx context.Context, op func(context.Context) error) error {
	err := op(ctx)
	if err == nil || !p.handles(err) {
		return err
	}
	return p.fallBack(ctx, err)
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy.
func (p *Policy) DoChain(ctx context.Context, c seawall.Chain) error {
	err := c.Run(ctx)
	if err == nil || !p.handles(err) {
		return err
	}
	return p.fallBack(ctx, err)
}

func (p *Policy) fallBack(ctx context.Context, err error) (ferr error) {
	p.fellBack.Add(1)
	ok := false
	defer func() {
		if !ok {
			p.failed.Add(1)
		}
	}()
	ferr = p.fallback(ctx, err)
	ok = ferr == nil
	return ferr
}

// Metrics is a snapshot of a fallback's counters.
type Metrics struct {
	// FellBack counts the calls whose error triggered the fallback.
	FellBack uint64 `json:"fellBack"`
	// Failed counts the fallbacks that returned an error (or panicked);
	// FellBack - Failed of them returned an answer.
	Failed uint64 `json:"failed"`
}

func (c *core) metrics() Metrics {
	// failed first: a snapshot never shows more failures than fallbacks.
	failed := c.failed.Load()
	return Metrics{FellBack: c.fellBack.Load(), Failed: failed}
}

// Metrics returns a snapshot of f's counters.
func (f *Fallback[T]) Metrics() Metrics { return f.metrics() }

// Metrics returns a snapshot of p's counters.
func (p *Policy) Metrics() Metrics { return p.metrics() }

// Registration is how package registry names the fallback. Its result is
// opaque outside this module; it is nil for a nil *Fallback.
func (f *Fallback[T]) Registration() *obs.Slot {
	if f == nil {
		return nil
	}
	return &f.slot
}

// Registration is how package registry names the policy. Its result is
// opaque outside this module; it is nil for a nil *Policy.
func (p *Policy) Registration() *obs.Slot {
	if p == nil {
		return nil
	}
	return &p.slot
}

func (*Fallback[T]) isFallback() {}
func (*Policy) isFallback()      {}

// Metered is implemented by every *Fallback[T], whatever T, and by
// *Policy, and by nothing outside this package: a registry, which cannot
// name every instance of a generic type, recognizes a fallback by it.
type Metered interface {
	Metrics() Metrics
	Registration() *obs.Slot
	isFallback()
}

var (
	_ Metered = (*Fallback[int])(nil)
	_ Metered = (*Policy)(nil)
)
