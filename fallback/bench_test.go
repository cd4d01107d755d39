package fallback_test

import (
	"context"
	"testing"
)

// fresh is the operation of the success-path benchmarks. It is not
// inlined, so that Direct pays for a real call, as Get does.
//
//go:noinline
func fresh(context.Context) (int, error) { return 1, nil }

//go:noinline
func freshErr(context.Context) error { return nil }

// BenchmarkGet measures the success path (op returns no error) of Get and
// of Policy.Do, serial and parallel, against its reference, Direct:
// calling the operation and checking its error. The fallback's overhead is
// a row minus Direct.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	f := mustNew(b, fallbackConfig())
	b.Run("Direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Get(ctx, fresh); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get/Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.Get(ctx, fresh); err != nil {
					panic(err)
				}
			}
		})
	})
	p := mustNewPolicy(b)
	b.Run("Policy/Do", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Do(ctx, freshErr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FellBack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Get(ctx, failing); err != nil {
				b.Fatal(err)
			}
		}
	})
}

//go:noinline
func failing(context.Context) (int, error) { return 0, errDown }
