package bulkhead

import (
	"context"
	"sync/atomic"
	"testing"
)

func newBench(b *testing.B, cfg Config) *Bulkhead {
	b.Helper()
	bh, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return bh
}

// BenchmarkTryAcquireRelease measures the primitive fast path: TryAcquire,
// then Release, serial and parallel, on a bulkhead that is never full (the
// limit is above GOMAXPROCS), so no call is rejected and none waits.
func BenchmarkTryAcquireRelease(b *testing.B) {
	b.Run("Serial", func(b *testing.B) { benchTryRelease(b, false) })
	b.Run("Parallel", func(b *testing.B) { benchTryRelease(b, true) })
}

// BenchmarkTryRelease reads the fast path against its floor, in the same
// run: impl=seawall is TryAcquire then Release (as in
// BenchmarkTryAcquireRelease); impl=floor is the least any admit and release
// on a shared word must do, an atomic Load and CompareAndSwap (an admission
// that cannot overshoot the limit) and an atomic Add (the release). Compare
// with benchstat -col /impl.
func BenchmarkTryRelease(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		parallel := mode == "parallel"
		b.Run("mode="+mode+"/impl=seawall", func(b *testing.B) { benchTryRelease(b, parallel) })
		b.Run("mode="+mode+"/impl=floor", func(b *testing.B) { benchFloor(b, parallel) })
	}
}

func benchTryRelease(b *testing.B, parallel bool) {
	bh := newBench(b, Config{MaxConcurrent: 1 << 20})
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			if !bh.TryAcquire() {
				b.Fatal("rejected")
			}
			bh.Release()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !bh.TryAcquire() {
				panic("rejected")
			}
			bh.Release()
		}
	})
}

// floorSem is the floor of BenchmarkTryRelease: a counter admitted with Load
// and CompareAndSwap below a limit, released with Add, padded like
// Bulkhead.state.
type floorSem struct {
	n     atomic.Uint64
	limit atomic.Uint64
	_     [48]byte
}

func (s *floorSem) tryAcquire() bool {
	w := s.n.Load()
	return w < s.limit.Load() && s.n.CompareAndSwap(w, w+1)
}

func (s *floorSem) release() { s.n.Add(^uint64(0)) }

func benchFloor(b *testing.B, parallel bool) {
	s := new(floorSem)
	s.limit.Store(1 << 20)
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			if !s.tryAcquire() {
				b.Fatal("rejected")
			}
			s.release()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.tryAcquire() {
				// A lost CAS: the floor retries, as any exact admission must.
				for !s.tryAcquire() {
				}
			}
			s.release()
		}
	})
}

// BenchmarkAcquireRelease measures Acquire on a bulkhead with a free slot,
// with a cancellable context, whose Done channel Acquire checks.
func BenchmarkAcquireRelease(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bh := newBench(b, Config{MaxWaiting: 10})
	b.ReportAllocs()
	for b.Loop() {
		if err := bh.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		bh.Release()
	}
}

// BenchmarkDo measures Do with a closure, serial and parallel.
func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	b.Run("Serial", func(b *testing.B) {
		bh := newBench(b, Config{})
		calls := 0
		op := func(context.Context) error { calls++; return nil }
		b.ReportAllocs()
		for b.Loop() {
			if err := bh.Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		bh := newBench(b, Config{MaxConcurrent: 1 << 20})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			op := func(context.Context) error { return nil }
			for pb.Next() {
				if err := bh.Do(ctx, op); err != nil {
					panic(err)
				}
			}
		})
	})
}

// BenchmarkRejected measures TryAcquire on a full bulkhead.
func BenchmarkRejected(b *testing.B) {
	bh := newBench(b, Config{MaxConcurrent: 1})
	if !bh.TryAcquire() {
		b.Fatal("precondition: the first slot is free")
	}
	b.ReportAllocs()
	for b.Loop() {
		if bh.TryAcquire() {
			b.Fatal("admitted beyond the limit")
		}
	}
}
