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
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
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
//   - lib=hand: the floor of the composition layer, the same four seawall
//     policies, configured alike, composed by hand through their
//     primitives (see handFour): what any correct composition of them
//     must pay. lib=seawall's excess over it is the cost of Pipeline.
//   - lib=failsafe: failsafe.With(ratelimiter, retrypolicy, circuitbreaker,
//     bulkhead).Run, built once (failsafe-go composes its first policy
//     outermost too).
func BenchmarkPipeline(b *testing.B) {
	libs := []struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}{
		{"seawall", benchSeawallPipeline},
		{"hand", benchHandPipeline},
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

// handFour is the four policies of benchSeawallPipeline composed by hand,
// as a careful user would write them for a hot path without Pipeline: the
// limiter's Try, the retry's Loop (its primitive form: on a first-attempt
// success it costs what Retry.DoChain's fast path costs, the budget's count
// of the request), the breaker's Allow and Permit.Done, the bulkhead's
// Acquire and Release. It behaves as the Pipeline does, failures and
// rejections included: a refusal of the bulkhead is the breaker's outcome,
// a failed attempt is retried through breaker and bulkhead.
//
// Its panic safety is what a correct composition needs and no more: one
// deferred function in the attempt, with the outcome flag Breaker.Do uses,
// that releases the bulkhead slot and records the failure on the breaker's
// permit (freeing a half-open probe) when op panics. The limiter's Try
// takes a token and holds no reservation, and the retry holds nothing on
// its first attempt without an AttemptTimeout, so neither needs a defer.
// (The open-coded defer is the cheapest form Go has; a recover-free
// cleanup costs it a flag store and a branch on the success path.)
type handFour struct {
	lim *ratelimit.Limiter
	r   *retry.Retry
	br  *breaker.Breaker
	bh  *bulkhead.Bulkhead
}

func (h *handFour) do(ctx context.Context, op func(context.Context) error) error {
	if err := h.lim.Try(1); err != nil {
		return err
	}
	l := h.r.Loop(ctx)
	for l.Next() {
		l.Record(h.attempt(l.Context(), op))
	}
	return l.Err()
}

func (h *handFour) attempt(ctx context.Context, op func(context.Context) error) error {
	p, err := h.br.Allow()
	if err != nil {
		return err
	}
	if err := h.bh.Acquire(ctx); err != nil {
		p.Done(err)
		return err
	}
	finished := false
	defer func() {
		if !finished { // op panicked; the panic continues
			h.bh.Release()
			p.Record(breaker.Failure)
		}
	}()
	err = op(ctx)
	finished = true
	h.bh.Release()
	p.Done(err)
	return err
}

func benchHandPipeline(b *testing.B, parallel bool) {
	lim, err := ratelimit.New(ratelimit.Config{Rate: limitRate, Burst: limitBurst})
	if err != nil {
		b.Fatal(err)
	}
	h := &handFour{
		lim: lim,
		r:   newSeawallRetry(b, retry.Config{MaxAttempts: maxAttempts}), // the default budget on
		br:  newSeawall(b),
		bh:  newSeawallBulkhead(b),
	}
	ctx := context.Background()
	if !parallel {
		for b.Loop() {
			if err := h.do(ctx, succeed); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := h.do(ctx, succeed); err != nil {
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
