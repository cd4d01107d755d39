package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"

	"github.com/seawall-go/seawall/hedge"
)

// hedgeDelay is far above any op's latency here: only the fast path, the
// first attempt answering before the delay, is measured, and each loop
// checks that the op's value came back.
const hedgeDelay = time.Hour

// BenchmarkHedge runs the fast path of a hedging policy with up to 2
// attempts and a fixed delay: the first attempt answers at once, so no
// hedge starts. Names are api=get/mode=…/lib=…, for benchstat -col /lib:
//
//   - lib=seawall: hedge.Get, whose first attempt runs on the caller's
//     goroutine, with a timer armed and stopped and an attempt context.
//   - lib=failsafe: failsafe-go's hedgepolicy (Executor.Get), which runs
//     every attempt in a new goroutine.
//   - lib=floor: the op called directly. A hedging policy cannot reach it:
//     it must at least arm and stop a timer and give the attempt a context
//     it can cancel.
//   - lib=floor+timer: what any hedging design must pay on that path: the
//     op called with a cancellable context, a timer armed before and
//     stopped after (time.AfterFunc), the context cancelled.
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines with b.RunParallel.
func BenchmarkHedge(b *testing.B) {
	libs := []struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}{
		{"seawall", benchSeawallHedge},
		{"failsafe", benchFailsafeHedge},
		{"floor", benchFloorHedge},
		{"floor+timer", benchFloorTimerHedge},
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, lib := range libs {
			b.Run("api=get/mode="+mode+"/lib="+lib.name, func(b *testing.B) {
				b.ReportAllocs()
				lib.bench(b, mode == "parallel")
			})
		}
	}
}

// getLoop runs get serially or in parallel, checking its value.
func getLoop(b *testing.B, parallel bool, get func() (int, error)) {
	if !parallel {
		for b.Loop() {
			if v, err := get(); err != nil || v != 1 {
				b.Fatal(v, err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := get(); err != nil || v != 1 {
				panic(err)
			}
		}
	})
}

func benchSeawallHedge(b *testing.B, parallel bool) {
	h, err := hedge.New(hedge.Config{Delay: hedgeDelay, MaxAttempts: 2})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	op := func(context.Context) (int, error) { return 1, nil }
	getLoop(b, parallel, func() (int, error) { return hedge.Get(ctx, h, op, nil) })
	if h.Metrics().Hedges != 0 {
		b.Fatal("hedged")
	}
}

func benchFailsafeHedge(b *testing.B, parallel bool) {
	hp := hedgepolicy.NewBuilderWithDelay[int](hedgeDelay).WithMaxHedges(1).Build()
	exec := failsafe.With(hp)
	op := func() (int, error) { return 1, nil }
	getLoop(b, parallel, func() (int, error) { return exec.Get(op) })
}

func benchFloorHedge(b *testing.B, parallel bool) {
	ctx := context.Background()
	op := func(context.Context) (int, error) { return 1, nil }
	getLoop(b, parallel, func() (int, error) { return op(ctx) })
}

func benchFloorTimerHedge(b *testing.B, parallel bool) {
	ctx := context.Background()
	op := func(context.Context) (int, error) { return 1, nil }
	fire := func() { panic("fired") }
	getLoop(b, parallel, func() (int, error) {
		actx, cancel := context.WithCancel(ctx)
		t := time.AfterFunc(hedgeDelay, fire)
		v, err := op(actx)
		t.Stop()
		cancel()
		return v, err
	})
}
