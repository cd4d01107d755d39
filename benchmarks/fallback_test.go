package benchmarks

import (
	"context"
	"testing"

	"github.com/failsafe-go/failsafe-go"
	fsfallback "github.com/failsafe-go/failsafe-go/fallback"

	"github.com/seawall-go/seawall/fallback"
)

// fresh is the operation every fallback benchmark runs: it succeeds, so
// only the success path is measured, and each loop checks that the value
// is op's, not the fallback's. It is not inlined, so that lib=floor pays
// for a real call, as the libraries do.
//
//go:noinline
func fresh(context.Context) (int, error) { return 1, nil }

const staleValue = -1 // the fallbacks' value

// BenchmarkFallback runs the same workload against each library: a
// fallback to a fixed value around an operation that succeeds. Names are
// mode=…/lib=…, so that benchstat -col /lib puts the libraries side by
// side:
//
//   - lib=seawall: Fallback[int].Get.
//   - lib=failsafe: failsafe-go's fallback.NewWithResult, run by an
//     executor built once (failsafe.With(fb).Get); failsafe.Get(fn, fb)
//     would build one per call.
//   - lib=floor: calling the operation directly and checking its error,
//     what any fallback must pay.
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one fallback with b.RunParallel.
func BenchmarkFallback(b *testing.B) {
	libs := []struct {
		name string
		get  func(b *testing.B) func() (int, error)
	}{
		{"seawall", seawallFallbackGet},
		{"failsafe", failsafeFallbackGet},
		{"floor", floorFallbackGet},
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, lib := range libs {
			b.Run("mode="+mode+"/lib="+lib.name, func(b *testing.B) {
				b.ReportAllocs()
				get := lib.get(b)
				if mode == "serial" {
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
			})
		}
	}
}

func seawallFallbackGet(b *testing.B) func() (int, error) {
	f, err := fallback.New(fallback.Config[int]{
		Fallback: func(context.Context, error) (int, error) { return staleValue, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	return func() (int, error) { return f.Get(ctx, fresh) }
}

func failsafeFallbackGet(*testing.B) func() (int, error) {
	exec := failsafe.With[int](fsfallback.NewWithResult(staleValue))
	ctx := context.Background()
	op := func() (int, error) { return fresh(ctx) }
	return func() (int, error) { return exec.Get(op) }
}

func floorFallbackGet(*testing.B) func() (int, error) {
	ctx := context.Background()
	return func() (int, error) {
		v, err := fresh(ctx)
		if err != nil {
			return staleValue, nil
		}
		return v, nil
	}
}
