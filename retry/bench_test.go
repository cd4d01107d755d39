package retry

import (
	"context"
	"testing"

	"github.com/seawall-go/seawall"
)

// succeed is the operation of the success-path benchmarks. It is not
// inlined, so that Direct pays for a real call, as Do does.
//
//go:noinline
func succeed(context.Context) error { return nil }

// BenchmarkDo measures the success path (the first attempt succeeds) of
// Do, DoChain and the loop form, with each budget mode and none, serial
// and parallel, against its reference: calling the operation directly.
// The overhead of the retry is a row minus Direct.
func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	b.Run("Direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := succeed(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, bc := range []struct {
		name   string
		budget BudgetConfig
	}{
		{"Ratio", BudgetConfig{}},
		{"Tokens", BudgetConfig{Mode: "tokens"}},
		{"NoBudget", BudgetConfig{Disabled: true}},
	} {
		r := mustNew(b, Config{Budget: bc.budget})
		b.Run(bc.name+"/Do", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Do(ctx, succeed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/Do/Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.Do(ctx, succeed); err != nil {
						panic(err)
					}
				}
			})
		})
		c := seawall.Op(succeed)
		b.Run(bc.name+"/DoChain", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.DoChain(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/Loop", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l := r.Loop(ctx)
				for l.Next() {
					l.Record(succeed(l.Context()))
				}
				if err := l.Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/GetIf", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v, err := GetIf(ctx, r, status, serverError); err != nil || v != 200 {
					b.Fatal(v, err)
				}
			}
		})
		b.Run(bc.name+"/GetIf/Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if v, err := GetIf(ctx, r, status, serverError); err != nil || v != 200 {
						panic(err)
					}
				}
			})
		})
	}
}

// status is the operation of the GetIf benchmarks: a value retryIf
// accepts at once.
//
//go:noinline
func status(context.Context) (int, error) { return 200, nil }

func serverError(code int) bool { return code >= 500 }
