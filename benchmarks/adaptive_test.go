package benchmarks

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	fsadaptive "github.com/failsafe-go/failsafe-go/adaptivelimiter"

	"github.com/seawall-go/seawall/adaptive"
)

// BenchmarkAdaptive measures admitting a call and recording its outcome
// with each adaptive concurrency limiter, at its defaults. The limit (20
// to start, 10 while seawall measures its first baseline; failsafe-go's
// 20) is above the goroutines of mode=parallel, so the limiter is never
// full: only the success path is measured, and each loop checks that no
// call is refused. The calls take no time: the windows that end (every
// 100ms for seawall, failsafe-go's recent window) move the limit within
// the measurement. Names are api=…/mode=…/lib=…, as in BenchmarkBulkhead,
// so that benchstat -col /lib puts the libraries side by side:
//
//   - api=try: take a permit without waiting, then record a success
//     (seawall TryAcquire and Permit.Done(nil); failsafe-go
//     TryAcquirePermit and Permit.Record).
//   - api=acquire: the same with the call that may wait, given a context
//     (seawall Acquire; failsafe-go AcquirePermit).
//   - lib=floor: what any design of the path must pay: a CAS to take a
//     slot, an atomic add to give it back, and two clock reads for the
//     latency, each the cheapest monotonic reading (time.Since of a fixed
//     start, cheaper than time.Now).
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one limiter with b.RunParallel.
func BenchmarkAdaptive(b *testing.B) {
	type lib struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}
	apis := []struct {
		name string
		libs []lib
	}{
		{"try", []lib{
			{"seawall", benchSeawallAdaptiveTry},
			{"failsafe", benchFailsafeAdaptiveTry},
			{"floor", benchAdaptiveFloor},
		}},
		{"acquire", []lib{
			{"seawall", benchSeawallAdaptiveAcquire},
			{"failsafe", benchFailsafeAdaptiveAcquire},
			{"floor", benchAdaptiveFloor},
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

func newSeawallAdaptive(b *testing.B) *adaptive.Limiter {
	b.Helper()
	l, err := adaptive.New(adaptive.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func benchSeawallAdaptiveTry(b *testing.B, parallel bool) {
	l := newSeawallAdaptive(b)
	if !parallel {
		for b.Loop() {
			p, ok := l.TryAcquire()
			if !ok {
				b.Fatal(adaptive.ErrLimited)
			}
			p.Done(nil)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, ok := l.TryAcquire()
			if !ok {
				panic(adaptive.ErrLimited)
			}
			p.Done(nil)
		}
	})
}

func benchSeawallAdaptiveAcquire(b *testing.B, parallel bool) {
	l := newSeawallAdaptive(b)
	ctx := context.Background()
	if !parallel {
		for b.Loop() {
			p, err := l.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			p.Done(nil)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := l.Acquire(ctx)
			if err != nil {
				panic(err)
			}
			p.Done(nil)
		}
	})
}

func benchFailsafeAdaptiveTry(b *testing.B, parallel bool) {
	l := fsadaptive.NewWithDefaults[any]()
	if !parallel {
		for b.Loop() {
			p, ok := l.TryAcquirePermit()
			if !ok {
				b.Fatal("failsafe-go: limit exceeded")
			}
			p.Record()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, ok := l.TryAcquirePermit()
			if !ok {
				panic("failsafe-go: limit exceeded")
			}
			p.Record()
		}
	})
}

func benchFailsafeAdaptiveAcquire(b *testing.B, parallel bool) {
	l := fsadaptive.NewWithDefaults[any]()
	ctx := context.Background()
	if !parallel {
		for b.Loop() {
			p, err := l.AcquirePermit(ctx)
			if err != nil {
				b.Fatal(err)
			}
			p.Record()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := l.AcquirePermit(ctx)
			if err != nil {
				panic(err)
			}
			p.Record()
		}
	})
}

// floorLimiter is the least state an adaptive limiter's path touches: a
// slot count taken with a CAS and given back with an add, and a clock.
type floorLimiter struct {
	inflight atomic.Int64
	epoch    time.Time
}

func (f *floorLimiter) tryAcquire(limit int64) (int64, bool) {
	n := f.inflight.Load()
	if n >= limit || !f.inflight.CompareAndSwap(n, n+1) {
		return 0, false
	}
	return int64(time.Since(f.epoch)), true
}

func (f *floorLimiter) done(start int64) int64 {
	d := int64(time.Since(f.epoch)) - start
	f.inflight.Add(-1)
	return d
}

var floorSink atomic.Int64

func benchAdaptiveFloor(b *testing.B, parallel bool) {
	f := &floorLimiter{epoch: time.Now()}
	if !parallel {
		var sum int64
		for b.Loop() {
			start, ok := f.tryAcquire(1 << 30)
			if !ok {
				b.Fatal("floor: full")
			}
			sum += f.done(start)
		}
		floorSink.Store(sum)
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		var sum int64
		for pb.Next() {
			// A lost CAS retries, as a real limiter's would.
			for {
				start, ok := f.tryAcquire(1 << 30)
				if ok {
					sum += f.done(start)
					break
				}
			}
		}
		floorSink.Add(sum)
	})
}
