package seawall

import (
	"context"
	"reflect"
	"sync"
)

// Policy is a resilience policy: it runs op under its protection and returns
// op's error, or an error of its own when it refuses to run op.
//
// Do passes op a context derived from ctx (or ctx itself). Implementations
// return op's error unchanged unless they document otherwise, so callers can
// inspect it with errors.Is and errors.As.
type Policy interface {
	Do(ctx context.Context, op func(context.Context) error) error
}

// PolicyFunc adapts a function to the [Policy] interface.
type PolicyFunc func(ctx context.Context, op func(context.Context) error) error

// Do calls f(ctx, op).
func (f PolicyFunc) Do(ctx context.Context, op func(context.Context) error) error {
	return f(ctx, op)
}

// Pipeline composes policies into one. The first policy is the outermost: it
// sees every call first, and its Do runs the rest of the pipeline as its
// operation. Nested pipelines are flattened. An empty pipeline runs op
// directly.
//
// The recommended order, as in the standard HTTP resilience pipelines, is
//
//	rate limiter → total timeout → retry → circuit breaker → attempt timeout
//
// so that the limiter sheds load before any work, the total timeout bounds all
// attempts together, every retry passes through the breaker (an open breaker
// stops retries at once), and each attempt has its own timeout. A bulkhead
// goes where the scarce resource is: outside retry to bound callers, inside
// the breaker to bound attempts.
//
// A pipeline of policies that implement [ChainPolicy], as every seawall
// policy does, allocates nothing per call of its own: each policy runs the
// rest of the pipeline as a [Chain] value. Any other Policy works too, at
// the cost of one closure per call, for the rest of the pipeline it wraps.
//
// Pipeline panics if a policy is nil, or a typed nil such as a nil
// *breaker.Breaker: that is a programming error that would otherwise surface
// as a nil dereference on the first call.
func Pipeline(policies ...Policy) Policy {
	flat := make(pipeline, 0, len(policies)+1)
	for i, p := range policies {
		if isNil(p) {
			panic("seawall: Pipeline: policy " + itoa(i) + " is nil")
		}
		switch p := p.(type) {
		case pipeline:
			flat = append(flat, p[:len(p)-1]...) // its policies, without its end
		case ChainPolicy:
			flat = append(flat, p)
		default:
			flat = append(flat, closureStage{p})
		}
	}
	return append(flat, end{})
}

// A pipeline is its policies, outermost first, each in its ChainPolicy
// form (see closureStage), resolved at construction, followed by end{}.
type pipeline []ChainPolicy

func (p pipeline) Do(ctx context.Context, op func(context.Context) error) error {
	return Chain{stages: p, op: op}.Run(ctx)
}

// closureStage is a Policy that is not a ChainPolicy, in a pipeline: it
// runs the rest of the pipeline as a closure, the one allocation such a
// policy costs per call.
type closureStage struct{ p Policy }

func (s closureStage) Do(ctx context.Context, op func(context.Context) error) error {
	return s.p.Do(ctx, op)
}

func (s closureStage) DoChain(ctx context.Context, c Chain) error {
	return s.p.Do(ctx, c.Run)
}

// end is the last stage of every chain: it runs the chain's operation. A
// zero-size value, it converts to an interface without allocating.
type end struct{}

func (end) Do(ctx context.Context, op func(context.Context) error) error { return op(ctx) }

// DoChain runs c's operation: c is what is left after end, no stage.
func (end) DoChain(ctx context.Context, c Chain) error { return c.op(ctx) }

// opOnly is the stages of a chain made by Op: only its end. It is never
// written.
var opOnly = [1]ChainPolicy{end{}}

// A Chain is an operation for a policy to run: the rest of a [Pipeline],
// ending in the caller's operation, or just an operation ([Op]). It is a
// small value, passed and copied freely; running it allocates nothing when
// every policy left in it implements [ChainPolicy].
type Chain struct {
	// stages are the policies left to run, outermost first, and the end,
	// which runs op. A chain that has run its end has none; the zero
	// Chain has none either, and panics if run, as a nil function would.
	stages []ChainPolicy
	op     func(context.Context) error
}

// Op returns the chain that runs op and nothing else: DoChain(ctx, Op(op))
// does what Do(ctx, op) does. (A policy should not implement Do that way: op
// would escape to the heap, through the chain, where a direct call of op
// lets a closure passed to Do stay on the caller's stack.)
func Op(op func(context.Context) error) Chain { return Chain{stages: opOnly[:], op: op} }

// Run runs the chain: the next policy, with the rest of the chain as its
// operation, or, once no policy is left, the operation itself with ctx.
//
// Run is small enough for the compiler to inline into the DoChain that
// calls it, so that a pipeline costs one call per policy, the interface
// call of the next DoChain. Keep it so (go build -gcflags=-m shows "can
// inline Chain.Run"): that is why the operation is run by a stage of its
// own (end) rather than by a branch here, which would be a second call.
func (c Chain) Run(ctx context.Context) error {
	next := c.stages[0]
	c.stages = c.stages[1:]
	return next.DoChain(ctx, c)
}

// A ChainPolicy is a Policy that can run a [Chain] in place of a function:
// DoChain(ctx, c) does what Do(ctx, op) does, running c.Run where Do runs
// op. A [Pipeline] of ChainPolicies passes the rest of the pipeline to each
// as a Chain value, where it would otherwise make a closure per policy per
// call. Every seawall policy implements it.
type ChainPolicy interface {
	Policy
	DoChain(ctx context.Context, c Chain) error
}

// Get runs op under p and returns its value. On success it returns the value
// of a successful attempt (if p runs attempts concurrently, as a hedging
// policy does, of one of them); on failure it returns the zero value of T and
// the error p.Do returned.
func Get[T any](ctx context.Context, p Policy, op func(context.Context) (T, error)) (T, error) {
	var (
		mu  sync.Mutex
		out T
	)
	err := p.Do(ctx, func(ctx context.Context) error {
		v, err := op(ctx)
		if err == nil {
			mu.Lock()
			out = v
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	mu.Lock()
	defer mu.Unlock()
	return out, nil
}

// isNil reports whether p is nil or holds a nil pointer, func, map, chan or
// slice: a typed nil that would crash on the first call.
func isNil(p Policy) bool {
	if p == nil {
		return true
	}
	switch v := reflect.ValueOf(p); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for ; i > 0; i /= 10 {
		n--
		b[n] = byte('0' + i%10)
	}
	return string(b[n:])
}
