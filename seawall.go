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
// Pipeline panics if a policy is nil, or a typed nil such as a nil
// *breaker.Breaker: that is a programming error that would otherwise surface
// as a nil dereference on the first call.
func Pipeline(policies ...Policy) Policy {
	flat := make(pipeline, 0, len(policies))
	for i, p := range policies {
		if isNil(p) {
			panic("seawall: Pipeline: policy " + itoa(i) + " is nil")
		}
		switch p := p.(type) {
		case pipeline:
			flat = append(flat, p...)
		default:
			flat = append(flat, p)
		}
	}
	return flat
}

type pipeline []Policy

func (p pipeline) Do(ctx context.Context, op func(context.Context) error) error {
	switch len(p) {
	case 0:
		return op(ctx)
	case 1:
		return p[0].Do(ctx, op)
	}
	rest := p[1:]
	return p[0].Do(ctx, func(ctx context.Context) error { return rest.Do(ctx, op) })
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
