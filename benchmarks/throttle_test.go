package benchmarks

import (
	"sync/atomic"
	"testing"

	"github.com/failsafe-go/failsafe-go/adaptivethrottler"

	"github.com/seawall-go/seawall/internal/shard"
	"github.com/seawall-go/seawall/throttle"
)

// BenchmarkThrottle measures a client-side throttle's accept path: ask for
// admission, then record a call the backend accepted, with a backend that
// accepts everything (so nothing is rejected; each loop checks it). Names
// are mode=…/lib=…, so that benchstat -col /lib puts them side by side:
//
//   - lib=seawall: throttle.Allow and Permit.Done(nil), with the defaults
//     (K 2, a 2-minute window).
//   - lib=failsafe: failsafe-go's adaptivethrottler (the same SRE
//     algorithm), TryAcquirePermit and RecordSuccess, with its defaults.
//   - lib=floor: what any design of this path pays without a clock read:
//     one atomic load, of the word that says whether to admit at once, and
//     one per-P increment (internal/shard: pin, plain add, unpin), to count
//     the accept without a contended cache line. A design that reads the
//     clock per call pays ~40 ns more on this VM.
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

// throttleFloor is the floor's state: the decision word and per-P
// counters, embedded and padded off other data, as a throttle's.
type throttleFloor struct {
	state  atomic.Uint32
	counts shard.Counters
	_      [64]byte
}

func (f *throttleFloor) accept() {
	if f.state.Load() == 0 {
		f.counts.Add(0)
	}
}

func benchThrottleFloor(b *testing.B, parallel bool) {
	f := new(throttleFloor)
	f.counts.Init()
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
	if f.counts.Load(0) == 0 {
		b.Fatal("nothing counted")
	}
}
