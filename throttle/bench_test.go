package throttle

import (
	"context"
	"testing"
)

// BenchmarkSlowPath measures Allow while the probability is above 0, when
// every call is a slow-path visit (a mutex, a clock read, a sample):
// admit, a call admitted at probability 0.9 (Rand never rejects; the
// outcome is forgotten, so the probability stays); reject, a local
// rejection (which takes the mutex a second time to count it). The
// accept path of a healthy throttle is benchmarks/throttle_test.go's.
func BenchmarkSlowPath(b *testing.B) {
	for _, bc := range []struct {
		name string
		rand func() float64
	}{{"admit", never}, {"reject", always}} {
		th, err := New(Config{Rand: bc.rand})
		if err != nil {
			b.Fatal(err)
		}
		for range 100 {
			Permit{th}.Done(refusal)
		}
		call := func() {
			p, err := th.Allow()
			if err == nil {
				p.Done(context.Canceled)
			}
		}
		b.Run(bc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				call()
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call()
				}
			})
		})
		if admitting(th) {
			b.Fatal("the fast path was taken")
		}
	}
}
