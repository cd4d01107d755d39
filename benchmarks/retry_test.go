package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/seawall-go/seawall/retry"
)

// Every retrier under test allows 3 attempts in all (2 retries). Only the
// success path is measured: the operation succeeds at once, so no retry is
// ever made and no delay ever waited, and each loop checks that no error is
// returned.
const (
	maxAttempts = 3
	retryDelay  = 100 * time.Millisecond // seawall's default first delay
	maxDelay    = 10 * time.Second       // seawall's default cap
)

// succeed is the operation every retry benchmark runs. It is not inlined,
// so that lib=direct pays for a real call, as the libraries do.
//
//go:noinline
func succeed(context.Context) error { return nil }

// BenchmarkRetry runs the same workloads against each library. Names are
// api=…/mode=…/lib=…, as in BenchmarkBreaker, so that benchstat -col /lib
// puts the libraries side by side:
//
//   - api=do: the convenience layer running a closure that succeeds
//     (seawall Retry.Do, cenkalti/backoff Retry, failsafe-go Executor.Run).
//     lib=direct calls the operation with no retry at all: the baseline,
//     so seawall's overhead is seawall minus direct. lib=seawall uses the
//     default Config, whose retry budget is on; lib=seawall-nobudget turns
//     the budget off, to show what it costs.
//   - api=loop: seawall's loop form, whose body assigns to a variable
//     declared outside the loop (which a closure passed to Do would have
//     to capture); it should allocate nothing.
//   - api=result: retry on a result value as well as an error, the value
//     succeeding at once (seawall retry.GetIf with a predicate, failsafe-go
//     HandleResult run by Executor.Get); lib=direct calls the operation and
//     checks its error and value.
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one retrier with b.RunParallel.
func BenchmarkRetry(b *testing.B) {
	type lib struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}
	apis := []struct {
		name  string
		modes []string
		libs  []lib
	}{
		{"do", []string{"serial", "parallel"}, []lib{
			{"seawall", benchSeawallRetryDo(retry.Config{})},
			{"seawall-nobudget", benchSeawallRetryDo(retry.Config{Budget: retry.BudgetConfig{Disabled: true}})},
			{"direct", benchDirectDo},
			{"cenkalti", benchCenkaltiDo},
			{"failsafe", benchFailsafeRetryDo},
		}},
		{"loop", []string{"serial"}, []lib{
			{"seawall", benchSeawallRetryLoop},
		}},
		{"result", []string{"serial", "parallel"}, []lib{
			{"seawall", benchSeawallGetIf},
			{"direct", benchDirectResult},
			{"failsafe", benchFailsafeHandleResult},
		}},
	}
	for _, api := range apis {
		for _, mode := range api.modes {
			for _, lib := range api.libs {
				name := "api=" + api.name + "/mode=" + mode + "/lib=" + lib.name
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					lib.bench(b, mode == "parallel")
				})
			}
		}
	}
}

// newSeawallRetry returns a seawall Retry with cfg, which leaves MaxAttempts
// to its default, 3.
func newSeawallRetry(b *testing.B, cfg retry.Config) *retry.Retry {
	b.Helper()
	r, err := retry.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func benchDirectDo(b *testing.B, parallel bool) {
	ctx := context.Background()
	if !parallel {
		for b.Loop() {
			if err := succeed(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := succeed(ctx); err != nil {
				panic(err)
			}
		}
	})
}

func benchSeawallRetryDo(cfg retry.Config) func(b *testing.B, parallel bool) {
	return func(b *testing.B, parallel bool) {
		r := newSeawallRetry(b, cfg)
		ctx := context.Background()
		op := succeed
		if !parallel {
			for b.Loop() {
				if err := r.Do(ctx, op); err != nil {
					b.Fatal(err)
				}
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := r.Do(ctx, op); err != nil {
					panic(err)
				}
			}
		})
	}
}

func benchSeawallRetryLoop(b *testing.B, _ bool) {
	r := newSeawallRetry(b, retry.Config{})
	ctx := context.Background()
	var calls int // written by the loop body: what a closure would capture
	for b.Loop() {
		l := r.Loop(ctx)
		for l.Next() {
			calls++
			l.Record(succeed(l.Context()))
		}
		if err := l.Err(); err != nil {
			b.Fatal(err)
		}
	}
	if calls == 0 {
		b.Fatal("the loop body never ran")
	}
}

// benchCenkaltiDo uses backoff.Retry as its users do: a BackOff is stateful,
// so one is made for each call, with the default exponential policy limited
// to 2 retries.
func benchCenkaltiDo(b *testing.B, parallel bool) {
	ctx := context.Background()
	op := func() error { return succeed(ctx) }
	if !parallel {
		for b.Loop() {
			if err := backoff.Retry(op, backoff.WithMaxRetries(backoff.NewExponentialBackOff(), maxAttempts-1)); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := backoff.Retry(op, backoff.WithMaxRetries(backoff.NewExponentialBackOff(), maxAttempts-1)); err != nil {
				panic(err)
			}
		}
	})
}

// benchFailsafeRetryDo runs a failsafe-go retry policy with seawall's
// default delays (exponential from 100ms to 10s); failsafe-go has no retry
// budget unless one is configured.
func benchFailsafeRetryDo(b *testing.B, parallel bool) {
	rp := retrypolicy.NewBuilder[any]().
		WithMaxAttempts(maxAttempts).
		WithBackoff(retryDelay, maxDelay).
		Build()
	// The executor is safe for concurrent use; build it once.
	exec := failsafe.With[any](rp)
	ctx := context.Background()
	op := func() error { return succeed(ctx) }
	if !parallel {
		for b.Loop() {
			if err := exec.Run(op); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := exec.Run(op); err != nil {
				panic(err)
			}
		}
	})
}

// statusOK is the operation of api=result: it returns a value that no
// retrier retries.
//
//go:noinline
func statusOK(context.Context) (int, error) { return 200, nil }

const statusUnavailable = 503 // the value every api=result retrier retries

func benchSeawallGetIf(b *testing.B, parallel bool) {
	r := newSeawallRetry(b, retry.Config{})
	ctx := context.Background()
	retryIf := func(code int) bool { return code == statusUnavailable }
	if !parallel {
		for b.Loop() {
			if v, err := retry.GetIf(ctx, r, statusOK, retryIf); err != nil || v != 200 {
				b.Fatal(v, err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := retry.GetIf(ctx, r, statusOK, retryIf); err != nil || v != 200 {
				panic(err)
			}
		}
	})
}

func benchDirectResult(b *testing.B, parallel bool) {
	ctx := context.Background()
	if !parallel {
		for b.Loop() {
			if v, err := statusOK(ctx); err != nil || v == statusUnavailable {
				b.Fatal(v, err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := statusOK(ctx); err != nil || v == statusUnavailable {
				panic(err)
			}
		}
	})
}

// benchFailsafeHandleResult runs a failsafe-go retry policy that retries
// errors and the value statusUnavailable, with seawall's default delays.
func benchFailsafeHandleResult(b *testing.B, parallel bool) {
	rp := retrypolicy.NewBuilder[int]().
		HandleResult(statusUnavailable).
		WithMaxAttempts(maxAttempts).
		WithBackoff(retryDelay, maxDelay).
		Build()
	exec := failsafe.With[int](rp)
	ctx := context.Background()
	op := func() (int, error) { return statusOK(ctx) }
	if !parallel {
		for b.Loop() {
			if v, err := exec.Get(op); err != nil || v != 200 {
				b.Fatal(v, err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := exec.Get(op); err != nil || v != 200 {
				panic(err)
			}
		}
	})
}
