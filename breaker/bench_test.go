package breaker

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seawall-go/seawall/clock"
)

func newBench(b *testing.B, cfg Config) *Breaker {
	b.Helper()
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return br
}

var benchConfigs = []struct {
	name string
	cfg  Config
}{
	{"Consecutive", Config{ConsecutiveFailures: 5}},
	{"CountWindow", Config{FailureRate: 0.5, CountWindow: 100}},
	{"TimeWindow", Config{FailureRate: 0.5, TimeWindow: 10 * time.Second}},
}

// BenchmarkAllowDone measures the primitive success path: Allow, then
// Done(nil), serial and parallel, for each kind of rule. The time window reads
// the clock once per call.
func BenchmarkAllowDone(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			br := newBench(b, bc.cfg)
			b.ReportAllocs()
			for b.Loop() {
				p, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				p.Done(nil)
			}
		})
		b.Run(bc.name+"/Parallel", func(b *testing.B) {
			br := newBench(b, bc.cfg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, err := br.Allow()
					if err != nil {
						panic(err)
					}
					p.Done(nil)
				}
			})
		})
	}
}

// BenchmarkTimeWindowClock measures the time window's success path, Allow
// then Done(nil), on the runtime's clock (the default) and on a coarse one,
// each next to its floor, serial and parallel; names are mode=…/lib=…, for
// benchstat -col /lib:
//
//   - lib=runtime: TimeWindow, no Config.Clock: a clock read, a CAS on the
//     P's bucket word, a per-P count;
//   - lib=floor-runtime: its floor, what any time window pays to count a
//     success without a shared cache line: the state word's load, then
//     time.Since of an epoch and a CAS on a word of the goroutine's own
//     (the breaker's words are per P);
//   - lib=coarse: TimeWindow with a clock.Coarse ticking every millisecond;
//   - lib=floor-coarse: its floor, the same with the atomic load of a
//     shared int64 for the clock read.
func BenchmarkTimeWindowClock(b *testing.B) {
	clk, err := clock.NewCoarse(time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer clk.Stop()
	cfg := Config{FailureRate: 0.5, TimeWindow: 10 * time.Second}
	type floor struct {
		_     [64]byte
		state atomic.Uint64
		now   atomic.Int64
		_     [48]byte
	}
	for _, mode := range []string{"serial", "parallel"} {
		parallel := mode == "parallel"
		b.Run("mode="+mode+"/lib=runtime", func(b *testing.B) {
			br := newBench(b, cfg)
			runAllowDone(b, parallel, func(*bucketWord) { allowDone(br) })
		})
		b.Run("mode="+mode+"/lib=floor-runtime", func(b *testing.B) {
			f := new(floor)
			f.state.Store(1)
			epoch := time.Now()
			runAllowDone(b, parallel, func(w *bucketWord) {
				if f.state.Load() != 0 {
					w.add(int64(time.Since(epoch)))
				}
			})
		})
		b.Run("mode="+mode+"/lib=coarse", func(b *testing.B) {
			c := cfg
			c.Clock = clk
			br := newBench(b, c)
			runAllowDone(b, parallel, func(*bucketWord) { allowDone(br) })
		})
		b.Run("mode="+mode+"/lib=floor-coarse", func(b *testing.B) {
			f := new(floor)
			f.state.Store(1)
			f.now.Store(1)
			runAllowDone(b, parallel, func(w *bucketWord) {
				if f.state.Load() != 0 {
					w.add(f.now.Load())
				}
			})
		})
	}
}

func allowDone(br *Breaker) {
	p, err := br.Allow()
	if err != nil {
		panic(err)
	}
	p.Done(nil)
}

// bucketWord is a floor's time-window bucket: bucket tag and count in one
// word, on a cache line of its own, as in timeWindow.add.
type bucketWord struct {
	w atomic.Uint64
	_ [56]byte
}

func (b *bucketWord) add(now int64) {
	tag := uint64(now/1e9) << 32
	for {
		old := b.w.Load()
		next := tag | 1
		if old&^(1<<32-1) == tag {
			next = old + 1
		}
		if b.w.CompareAndSwap(old, next) {
			return
		}
	}
}

// runAllowDone calls f b.N times, serially with b.Loop or from GOMAXPROCS
// goroutines with b.RunParallel, each goroutine with a bucket word of its
// own.
func runAllowDone(b *testing.B, parallel bool, f func(*bucketWord)) {
	b.ReportAllocs()
	if !parallel {
		w := new(bucketWord)
		for b.Loop() {
			f(w)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		w := new(bucketWord)
		for pb.Next() {
			f(w)
		}
	})
}

// BenchmarkDo measures Do with a closure on the success path.
func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	b.Run("Serial", func(b *testing.B) {
		br := newBench(b, Config{FailureRate: 0.5, CountWindow: 100})
		calls := 0
		op := func(context.Context) error { calls++; return nil }
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		br := newBench(b, Config{FailureRate: 0.5, CountWindow: 100})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			op := func(context.Context) error { return nil }
			for pb.Next() {
				if err := br.Do(ctx, op); err != nil {
					panic(err)
				}
			}
		})
	})
}

// BenchmarkRejected measures the fail-fast path of an open breaker.
func BenchmarkRejected(b *testing.B) {
	br := newBench(b, Config{OpenDuration: time.Hour})
	br.ForceOpen()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Allow(); !errors.Is(err, ErrOpen) {
			b.Fatal(err)
		}
	}
}

// BenchmarkFailure measures recording a failure that trips no rule: the
// slow path a struggling dependency's callers take.
func BenchmarkFailure(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			cfg.ConsecutiveFailures, cfg.FailureRate = 0, 0.99 // never trips: 1 failure in 2 calls
			if bc.cfg.FailureRate == 0 {
				cfg.FailureRate, cfg.CountWindow = 0, 0
				cfg.ConsecutiveFailures = 1 << 30
			}
			br := newBench(b, cfg)
			b.ReportAllocs()
			for b.Loop() {
				p, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				p.Done(errBench)
				p, _ = br.Allow()
				p.Done(nil)
			}
		})
	}
}

var errBench = errors.New("bench")

// BenchmarkGroupGet measures looking up an existing key in a Group.
func BenchmarkGroupGet(b *testing.B) {
	g, err := NewGroup(Config{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	g.Get("accounts.example:443")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Get("accounts.example:443")
		}
	})
}

// BenchmarkGroupChurn: a flood of new keys through a full group, one in
// two of them failing (and so held open): each new key evicts one, and the
// sweep must not cost the size of the group.
func BenchmarkGroupChurn(b *testing.B) {
	g, err := NewGroup(Config{ConsecutiveFailures: 1}, 1024)
	if err != nil {
		b.Fatal(err)
	}
	boom := errors.New("boom")
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var err error
		if i%2 == 0 {
			err = boom
		}
		_ = g.Do(b.Context(), keys[i%len(keys)], func(context.Context) error { return err })
	}
}
