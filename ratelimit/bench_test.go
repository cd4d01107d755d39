package ratelimit

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seawall-go/seawall/clock"
)

// benchConfig never refuses on the benchmark path: a billion tokens a
// second and a billion in the bucket, so every call is measured on the
// path that takes a token (and the CAS that goes with it).
var benchConfig = Config{Rate: 1e9, Burst: 1e9}

func newBench(b *testing.B, cfg Config) *Limiter {
	b.Helper()
	l, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkAllow measures Allow, serial and parallel, for a finite rate
// (one clock read and one CAS) and an infinite one (neither).
func BenchmarkAllow(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"Finite", benchConfig},
		{"Inf", Config{Rate: math.Inf(1)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newBench(b, bc.cfg)
			b.ReportAllocs()
			for b.Loop() {
				l.Allow()
			}
			reportRefused(b, l.Metrics())
		})
		b.Run(bc.name+"/Parallel", func(b *testing.B) {
			l := newBench(b, bc.cfg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Allow()
				}
			})
			reportRefused(b, l.Metrics())
		})
	}
}

// BenchmarkAllowClock measures Allow on the runtime's clock (the default)
// and on a coarse one, each next to its floor, serial and parallel; names
// are mode=…/lib=…, for benchstat -col /lib:
//
//   - lib=runtime: Allow with no Config.Clock: time.Since and a CAS;
//   - lib=floor-runtime: its floor, what any limiter on the runtime's clock
//     pays: time.Since of an epoch, then the TAT's load and CAS, on a word
//     padded as the limiter's;
//   - lib=coarse: Allow with a clock.Coarse ticking every millisecond;
//   - lib=floor-coarse: its floor, an atomic load of a shared int64 on a
//     cache line of its own, then the same load and CAS.
func BenchmarkAllowClock(b *testing.B) {
	clk, err := clock.NewCoarse(time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer clk.Stop()
	for _, mode := range []string{"serial", "parallel"} {
		b.Run("mode="+mode+"/lib=runtime", func(b *testing.B) {
			l := newBench(b, benchConfig)
			runAllow(b, mode == "parallel", l.Allow)
			reportRefused(b, l.Metrics())
		})
		b.Run("mode="+mode+"/lib=floor-runtime", func(b *testing.B) {
			f := newFloorLimiter()
			epoch := time.Now()
			runAllow(b, mode == "parallel", func() bool { return f.take(int64(time.Since(epoch))) })
		})
		b.Run("mode="+mode+"/lib=coarse", func(b *testing.B) {
			cfg := benchConfig
			cfg.Clock = clk
			l := newBench(b, cfg)
			runAllow(b, mode == "parallel", l.Allow)
			reportRefused(b, l.Metrics())
		})
		b.Run("mode="+mode+"/lib=floor-coarse", func(b *testing.B) {
			f := newFloorLimiter()
			runAllow(b, mode == "parallel", func() bool { return f.take(f.now.Load()) })
		})
	}
}

// floorLimiter is the least a GCRA limiter does: one CAS on the TAT, at a
// time now read by the caller. now is the floor's coarse clock, a word
// nothing writes during the benchmark (a coarse clock writes it once a
// tick).
type floorLimiter struct {
	_        [64]byte
	now      atomic.Int64
	_        [56]byte
	tat      atomic.Int64
	_        [56]byte
	interval int64
	tau      int64
}

func newFloorLimiter() *floorLimiter {
	f := &floorLimiter{interval: 1, tau: 1e9}
	f.now.Store(1)
	return f
}

func (f *floorLimiter) take(now int64) bool {
	for {
		old := f.tat.Load()
		tat := max(old, now) + f.interval
		if tat-f.tau > now {
			return false
		}
		if f.tat.CompareAndSwap(old, tat) {
			return true
		}
	}
}

// runAllow calls allow b.N times, serially with b.Loop or from GOMAXPROCS
// goroutines with b.RunParallel.
func runAllow(b *testing.B, parallel bool, allow func() bool) {
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			allow()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			allow()
		}
	})
}

// BenchmarkTry measures Try(1) on the allowed path: it returns nil and
// allocates nothing.
func BenchmarkTry(b *testing.B) {
	l := newBench(b, benchConfig)
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Try(1)
	}
	reportRefused(b, l.Metrics())
}

// BenchmarkAllowRefused measures the refusing path of Allow: no CAS, a
// counter, no allocation.
func BenchmarkAllowRefused(b *testing.B) {
	l := newBench(b, Config{Rate: 1e-3, Burst: 1})
	l.Allow()
	b.ReportAllocs()
	for b.Loop() {
		if l.Allow() {
			b.Fatal("allowed")
		}
	}
}

// BenchmarkKeyedAllow measures Keyed.Allow on a key that exists, serial,
// and in parallel on one key per goroutine (spread over the shards).
func BenchmarkKeyedAllow(b *testing.B) {
	newKeyed := func(b *testing.B) *Keyed {
		k, err := NewKeyed(KeyedConfig{Config: benchConfig, MaxKeys: 100_000})
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	b.Run("ExistingKey", func(b *testing.B) {
		k := newKeyed(b)
		const key = "tenant-42"
		k.Allow(key)
		b.ReportAllocs()
		for b.Loop() {
			k.Allow(key)
		}
		reportRefused(b, k.Metrics())
	})
	b.Run("ExistingKey/Parallel", func(b *testing.B) {
		k := newKeyed(b)
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := "tenant-" + strconv.FormatInt(next.Add(1), 10)
			k.Allow(key)
			for pb.Next() {
				k.Allow(key)
			}
		})
		reportRefused(b, k.Metrics())
	})
}

// BenchmarkKeyedAllowFloor measures Keyed.Allow on a known key next to
// its floor, serial and in parallel (one key per goroutine); names are
// mode=…/lib=…, for benchstat -col /lib:
//
//   - lib=runtime: Keyed.Allow on the runtime's clock (the default);
//   - lib=floor-runtime: its floor, a plain map lookup of the key (a
//     map[string]*floorLimiter nothing writes, so it takes no lock), then
//     what any limiter on the runtime's clock pays: time.Since of an epoch,
//     the TAT's load and CAS;
//   - lib=coarse: Keyed.Allow on a clock.Coarse ticking every millisecond;
//   - lib=floor-coarse: the map lookup, then an atomic load of a shared
//     int64 and the same load and CAS.
//
// The keys are "tenant-N", 8 or 9 bytes, and the Keyed holds 1000 of them,
// the map as many.
func BenchmarkKeyedAllowFloor(b *testing.B) {
	clk, err := clock.NewCoarse(time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer clk.Stop()
	const live = 1000
	keys := make([]string, live)
	floors := make(map[string]*floorLimiter, live)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
		floors[keys[i]] = newFloorLimiter()
	}
	newKeyed := func(b *testing.B, clk *clock.Coarse) *Keyed {
		cfg := benchConfig
		cfg.Clock = clk
		k, err := NewKeyed(KeyedConfig{Config: cfg, MaxKeys: 2 * live})
		if err != nil {
			b.Fatal(err)
		}
		for _, key := range keys {
			k.Allow(key)
		}
		return k
	}
	// run calls allow(key) b.N times: serially on keys[42], or from
	// GOMAXPROCS goroutines, each on a key of its own.
	run := func(b *testing.B, parallel bool, allow func(string) bool) {
		b.ReportAllocs()
		if !parallel {
			key := keys[42]
			for b.Loop() {
				allow(key)
			}
			return
		}
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := keys[next.Add(1)*97%live]
			for pb.Next() {
				allow(key)
			}
		})
	}
	epoch := time.Now()
	for _, mode := range []string{"serial", "parallel"} {
		parallel := mode == "parallel"
		b.Run("mode="+mode+"/lib=runtime", func(b *testing.B) {
			k := newKeyed(b, nil)
			run(b, parallel, k.Allow)
			reportRefused(b, k.Metrics())
		})
		b.Run("mode="+mode+"/lib=floor-runtime", func(b *testing.B) {
			run(b, parallel, func(key string) bool { return floors[key].take(int64(time.Since(epoch))) })
		})
		b.Run("mode="+mode+"/lib=coarse", func(b *testing.B) {
			k := newKeyed(b, clk)
			run(b, parallel, k.Allow)
			reportRefused(b, k.Metrics())
		})
		b.Run("mode="+mode+"/lib=floor-coarse", func(b *testing.B) {
			now := newFloorLimiter()
			run(b, parallel, func(key string) bool { return floors[key].take(now.now.Load()) })
		})
	}
}

// BenchmarkKeyedScale measures Keyed.Allow over many live keys, next to
// the floor of BenchmarkKeyedAllowFloor (a plain map of floorLimiters on
// the runtime's clock) holding the same keys: live=1000, 100000 and
// 1000000 keys of 14 bytes ("tenant-0000042"), each call on the next key
// of a stride through them that touches every key, so past the caches
// each call misses them as a real fleet of tenants would. B/key is the
// heap the structure holds per key, measured after a GC, the keys' own
// bytes excluded.
func BenchmarkKeyedScale(b *testing.B) {
	for _, live := range []int{1_000, 100_000, 1_000_000} {
		keys := make([]string, live)
		for i := range keys {
			keys[i] = fmt.Sprintf("tenant-%07d", i)
		}
		// A stride coprime with live visits every key before it repeats.
		stride := 7_919 % live // 7919 is a prime, so coprime with live
		run := func(b *testing.B, build func() func(string) bool) {
			before := heapInUse()
			allow := build()
			perKey := float64(heapInUse()-before) / float64(live)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				allow(keys[i])
				if i += stride; i >= live {
					i -= live
				}
			}
			runtime.KeepAlive(allow)
			b.ReportMetric(perKey, "B/key")
		}
		name := "live=" + strconv.Itoa(live)
		b.Run(name+"/lib=runtime", func(b *testing.B) {
			var k *Keyed
			run(b, func() func(string) bool {
				var err error
				k, err = NewKeyed(KeyedConfig{Config: benchConfig, MaxKeys: 2 * live})
				if err != nil {
					b.Fatal(err)
				}
				for _, key := range keys {
					k.Allow(key)
				}
				return k.Allow
			})
			if n := k.Len(); n != live {
				b.Fatalf("%d keys remembered, want %d", n, live)
			}
			reportRefused(b, k.Metrics())
		})
		b.Run(name+"/lib=floor-runtime", func(b *testing.B) {
			run(b, func() func(string) bool {
				floors := make(map[string]*floorLimiter, live)
				for _, key := range keys {
					floors[key] = newFloorLimiter()
				}
				epoch := time.Now()
				return func(key string) bool { return floors[key].take(int64(time.Since(epoch))) }
			})
		})
	}
}

// heapInUse returns the bytes of live heap objects, after a GC.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// reportRefused reports the share of calls the limiter refused, as
// refused/op: a benchmark of the allowed path should show 0, but a busy
// machine may stall a goroutine long enough to be refused, which is a
// figure to read, not a reason to abort the run.
func reportRefused(b *testing.B, m Metrics) {
	if n := m.Allowed + m.Limited; n > 0 {
		b.ReportMetric(float64(m.Limited)/float64(n), "refused/op")
	}
}
