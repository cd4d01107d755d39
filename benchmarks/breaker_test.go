package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"

	"github.com/seawall-go/seawall/breaker"
)

// Every breaker under test is configured alike, as far as each library
// allows: trip at a failure rate of 50% over the last 100 calls, stay open
// 5 seconds. Only the success path is measured; each loop checks that no
// call is rejected, so a benchmark cannot silently measure a rejection.
const (
	failureRate  = 0.5
	window       = 100
	openDuration = 5 * time.Second
)

// BenchmarkBreaker runs the same workloads against each library. Names are
// api=…/mode=…/lib=…, so that benchstat -col /lib puts the libraries side
// by side:
//
//   - api=allow: the primitive layer, ask for admission then record a
//     success (seawall Allow/Permit.Done, gobreaker TwoStepCircuitBreaker
//     Allow/done, failsafe-go TryAcquirePermit/RecordSuccess).
//   - api=do: the convenience layer running a closure that succeeds
//     (seawall Do, gobreaker Execute, failsafe-go Executor.Run).
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one breaker with b.RunParallel.
func BenchmarkBreaker(b *testing.B) {
	type lib struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}
	apis := []struct {
		name string
		libs []lib
	}{
		{"allow", []lib{
			{"seawall", benchSeawallAllow},
			{"gobreaker", benchGobreakerAllow},
			{"failsafe", benchFailsafeAllow},
		}},
		{"do", []lib{
			{"seawall", benchSeawallDo},
			{"gobreaker", benchGobreakerDo},
			{"failsafe", benchFailsafeDo},
		}},
	}
	for _, api := range apis {
		for _, mode := range []string{"serial", "parallel"} {
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

// newSeawall returns a seawall breaker with a count window.
func newSeawall(b *testing.B) *breaker.Breaker {
	b.Helper()
	br, err := breaker.New(breaker.Config{
		FailureRate:  failureRate,
		CountWindow:  window,
		OpenDuration: openDuration,
	})
	if err != nil {
		b.Fatal(err)
	}
	return br
}

// gobreakerSettings approximates the count window: gobreaker has none, so
// with Interval 0 its counts are kept from the last state change, and
// ReadyToTrip opens at a 50% failure ratio once 100 requests were seen.
func gobreakerSettings() gobreaker.Settings {
	return gobreaker.Settings{
		Timeout: openDuration,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= window && float64(c.TotalFailures)/float64(c.Requests) >= failureRate
		},
	}
}

// newFailsafe returns a count-based failsafe-go breaker that opens when 50 of
// the last 100 executions failed. (WithFailureRateThreshold is time-based
// only in failsafe-go.)
func newFailsafe() circuitbreaker.CircuitBreaker[any] {
	return circuitbreaker.NewBuilder[any]().
		WithFailureThresholdRatio(uint(failureRate*window), window).
		WithDelay(openDuration).
		Build()
}

func benchSeawallAllow(b *testing.B, parallel bool) {
	br := newSeawall(b)
	if !parallel {
		for b.Loop() {
			p, err := br.Allow()
			if err != nil {
				b.Fatal(err)
			}
			p.Done(nil)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := br.Allow()
			if err != nil {
				panic(err)
			}
			p.Done(nil)
		}
	})
}

func benchGobreakerAllow(b *testing.B, parallel bool) {
	cb := gobreaker.NewTwoStepCircuitBreaker[any](gobreakerSettings())
	if !parallel {
		for b.Loop() {
			done, err := cb.Allow()
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done, err := cb.Allow()
			if err != nil {
				panic(err)
			}
			done(nil)
		}
	})
}

func benchFailsafeAllow(b *testing.B, parallel bool) {
	cb := newFailsafe()
	if !parallel {
		for b.Loop() {
			if !cb.TryAcquirePermit() {
				b.Fatal(circuitbreaker.ErrOpen)
			}
			cb.RecordSuccess()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !cb.TryAcquirePermit() {
				panic(circuitbreaker.ErrOpen)
			}
			cb.RecordSuccess()
		}
	})
}

func benchSeawallDo(b *testing.B, parallel bool) {
	br := newSeawall(b)
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	if !parallel {
		for b.Loop() {
			if err := br.Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Do(ctx, op); err != nil {
				panic(err)
			}
		}
	})
}

func benchGobreakerDo(b *testing.B, parallel bool) {
	cb := gobreaker.NewCircuitBreaker[any](gobreakerSettings())
	op := func() (any, error) { return nil, nil }
	if !parallel {
		for b.Loop() {
			if _, err := cb.Execute(op); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cb.Execute(op); err != nil {
				panic(err)
			}
		}
	})
}

func benchFailsafeDo(b *testing.B, parallel bool) {
	// The executor is safe for concurrent use; build it once.
	exec := failsafe.With[any](newFailsafe())
	op := func() error { return nil }
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
