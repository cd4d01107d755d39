package bulkhead

import (
	"context"
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
	b.Run("Serial", func(b *testing.B) {
		bh := newBench(b, Config{})
		b.ReportAllocs()
		for b.Loop() {
			if !bh.TryAcquire() {
				b.Fatal("rejected")
			}
			bh.Release()
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		bh := newBench(b, Config{MaxConcurrent: 1 << 20})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !bh.TryAcquire() {
					panic("rejected")
				}
				bh.Release()
			}
		})
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
