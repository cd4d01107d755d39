package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

// BenchmarkPipeline composes four policies, outermost first: rate limiter
// → retry → circuit breaker → bulkhead, around an operation that succeeds
// at once, and measures one call, serial and parallel. Each policy is
// configured as in its own benchmark (BenchmarkLimiter, BenchmarkRetry,
// BenchmarkBreaker, BenchmarkBulkhead), so the composed cost can be read
// against the sum of the parts.
//
//   - lib=seawall: seawall.Pipeline(limiter, retry, breaker, bulkhead).Do;
//     every seawall policy implements seawall.ChainPolicy, so the pipeline
//     makes no closure per call.
//   - lib=failsafe: failsafe.With(ratelimiter, retrypolicy, circuitbreaker,
//     bulkhead).Run, built once (failsafe-go composes its first policy
//     outermost too).
func BenchmarkPipeline(b *testing.B) {
	libs := []struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}{
		{"seawall", benchSeawallPipeline},
		{"failsafe", benchFailsafePipeline},
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, lib := range libs {
			b.Run("api=do/mode="+mode+"/lib="+lib.name, func(b *testing.B) {
				b.ReportAllocs()
				lib.bench(b, mode == "parallel")
			})
		}
	}
}

func benchSeawallPipeline(b *testing.B, parallel bool) {
	lim, err := ratelimit.New(ratelimit.Config{Rate: limitRate, Burst: limitBurst})
	if err != nil {
		b.Fatal(err)
	}
	p := seawall.Pipeline(
		lim,
		newSeawallRetry(b, retry.Config{MaxAttempts: maxAttempts}), // the default budget on
		newSeawall(b),
		newSeawallBulkhead(b),
	)
	ctx := context.Background()
	if !parallel {
		for b.Loop() {
			if err := p.Do(ctx, succeed); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(ctx, succeed); err != nil {
				panic(err)
			}
		}
	})
}

func benchFailsafePipeline(b *testing.B, parallel bool) {
	exec := failsafe.With[any](
		ratelimiter.NewBursty[any](uint(limitBurst), time.Duration(float64(time.Second)*limitBurst/limitRate)),
		retrypolicy.NewBuilder[any]().WithMaxAttempts(maxAttempts).WithBackoff(retryDelay, maxDelay).Build(),
		newFailsafe(),
		fsbulkhead.New[any](maxConcurrent),
	)
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
