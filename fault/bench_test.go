package fault

import (
	"context"
	"sync/atomic"
	"testing"
)

// benchOp is the operation of the benchmarks, a package variable so that
// no benchmark can inline it away.
var benchOp = func(context.Context) error { return nil }

// BenchmarkDo measures Do around an empty operation: disabled (the path
// every call of a production service pays: one atomic load), beside its
// floor, a bare atomic load and the call of op; and enabled with rates of
// 0 (the injection path's counters and random draws).
func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	op := benchOp
	b.Run("mode=floor", func(b *testing.B) {
		var on atomic.Bool
		b.ReportAllocs()
		for b.Loop() {
			if !on.Load() {
				_ = op(ctx)
			}
		}
	})
	b.Run("mode=disabled", func(b *testing.B) {
		i, _ := New(Config{ErrorRate: 0.5})
		b.ReportAllocs()
		for b.Loop() {
			_ = i.Do(ctx, op)
		}
	})
	b.Run("mode=disabled/parallel", func(b *testing.B) {
		i, _ := New(Config{ErrorRate: 0.5})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = i.Do(ctx, op)
			}
		})
	})
	b.Run("mode=enabled", func(b *testing.B) {
		i, _ := New(Config{Enabled: true, ErrorRate: 0.5})
		b.ReportAllocs()
		for b.Loop() {
			_ = i.Do(ctx, op)
		}
	})
}
