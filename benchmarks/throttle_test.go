package benchmarks

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivethrottler"

	"github.com/seawall-go/seawall/throttle"
)

// BenchmarkThrottle measures a client-side throttle's accept path: ask for
// admission, then record a call the backend accepted, with a backend that
// accepts everything (so nothing is rejected; each loop checks it). Names
// are mode=…/lib=…, so that benchstat -col /lib puts them side by side:
//
//   - lib=seawall: throttle.Allow and Permit.Done(nil), with the defaults
//     (K 2, a 2-minute window of 1s buckets).
//   - lib=failsafe: failsafe-go's adaptivethrottler (the same SRE
//     algorithm), TryAcquirePermit and RecordSuccess, with its defaults.
//   - lib=floor: what any design of this path pays: one clock read, to
//     find the time bucket, and one atomic add to count the request and
//     its accept (seawall packs both counts in one word; a design with
//     two words pays a second add).
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one throttle with b.RunParallel.
func BenchmarkThrottle(b *testing.B) {
	libs := []struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}{
		{"seawall", benchSeawallThrottle},
		{"failsafe", benchFailsafeThrottle},
		{"floor", benchThrottleFloor},
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, lib := range libs {
			b.Run("mode="+mode+"/lib="+lib.name, func(b *testing.B) {
				b.ReportAllocs()
				lib.bench(b, mode == "parallel")
			})
		}
	}
}

func benchSeawallThrottle(b *testing.B, parallel bool) {
	th, err := throttle.New(throttle.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if !parallel {
		for b.Loop() {
			p, err := th.Allow()
			if err != nil {
				b.Fatal(err)
			}
			p.Done(nil)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := th.Allow()
			if err != nil {
				panic(err)
			}
			p.Done(nil)
		}
	})
}

func benchFailsafeThrottle(b *testing.B, parallel bool) {
	th := adaptivethrottler.NewWithDefaults[any]()
	if !parallel {
		for b.Loop() {
			if !th.TryAcquirePermit() {
				b.Fatal("rejected")
			}
			th.RecordSuccess()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !th.TryAcquirePermit() {
				panic("rejected")
			}
			th.RecordSuccess()
		}
	})
}

// throttleFloor is the floor's state: a clock origin and one counter word,
// alone on its cache line as a throttle's current bucket is.
type throttleFloor struct {
	epoch time.Time
	_     [40]byte
	n     atomic.Uint64
	_     [56]byte
}

//go:noinline
func (f *throttleFloor) accept() {
	idx := int64(time.Since(f.epoch)) / int64(time.Second)
	f.n.Add(1<<32 | 1 + uint64(idx&0)) // idx feeds the add, as a bucket index would
}

func benchThrottleFloor(b *testing.B, parallel bool) {
	f := &throttleFloor{epoch: time.Now()}
	if !parallel {
		for b.Loop() {
			f.accept()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.accept()
		}
	})
}
