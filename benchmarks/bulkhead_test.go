package benchmarks

import (
	"context"
	"testing"

	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"

	"github.com/seawall-go/seawall/bulkhead"
)

// Every bulkhead under test admits maxConcurrent calls at once, with no
// queue (seawall's default; failsafe-go's with no max wait time). The limit
// is above the number of goroutines of mode=parallel, so the bulkhead is
// never full: only the success path is measured, and each loop checks that
// no call is rejected, so a benchmark cannot silently measure a rejection.
const maxConcurrent = 25 // seawall's default, and resilience4j's

// BenchmarkBulkhead runs the same workloads against each library. Names are
// api=…/mode=…/lib=…, as in BenchmarkBreaker, so that benchstat -col /lib
// puts the libraries side by side:
//
//   - api=try: the primitive layer, take a slot without waiting, then give
//     it back (seawall TryAcquire/Release, failsafe-go
//     TryAcquirePermit/ReleasePermit).
//   - api=do: the convenience layer running a closure that succeeds
//     (seawall Do, failsafe-go Executor.Run).
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one bulkhead with b.RunParallel.
func BenchmarkBulkhead(b *testing.B) {
	type lib struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}
	apis := []struct {
		name string
		libs []lib
	}{
		{"try", []lib{
			{"seawall", benchSeawallTry},
			{"failsafe", benchFailsafeTry},
		}},
		{"do", []lib{
			{"seawall", benchSeawallBulkheadDo},
			{"failsafe", benchFailsafeBulkheadDo},
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

// newSeawallBulkhead returns a seawall bulkhead of maxConcurrent slots.
func newSeawallBulkhead(b *testing.B) *bulkhead.Bulkhead {
	b.Helper()
	bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: maxConcurrent})
	if err != nil {
		b.Fatal(err)
	}
	return bh
}

func benchSeawallTry(b *testing.B, parallel bool) {
	bh := newSeawallBulkhead(b)
	if !parallel {
		for b.Loop() {
			if !bh.TryAcquire() {
				b.Fatal(bulkhead.ErrFull)
			}
			bh.Release()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !bh.TryAcquire() {
				panic(bulkhead.ErrFull)
			}
			bh.Release()
		}
	})
}

func benchFailsafeTry(b *testing.B, parallel bool) {
	bh := fsbulkhead.New[any](maxConcurrent)
	if !parallel {
		for b.Loop() {
			if !bh.TryAcquirePermit() {
				b.Fatal(fsbulkhead.ErrFull)
			}
			bh.ReleasePermit()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !bh.TryAcquirePermit() {
				panic(fsbulkhead.ErrFull)
			}
			bh.ReleasePermit()
		}
	})
}

func benchSeawallBulkheadDo(b *testing.B, parallel bool) {
	bh := newSeawallBulkhead(b)
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	if !parallel {
		for b.Loop() {
			if err := bh.Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bh.Do(ctx, op); err != nil {
				panic(err)
			}
		}
	})
}

func benchFailsafeBulkheadDo(b *testing.B, parallel bool) {
	// The executor is safe for concurrent use; build it once.
	exec := failsafe.With[any](fsbulkhead.New[any](maxConcurrent))
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
