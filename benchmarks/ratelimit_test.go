package benchmarks

import (
	"sync/atomic"
	"testing"

	uberrl "go.uber.org/ratelimit"
	"golang.org/x/time/rate"

	"github.com/seawall-go/seawall/ratelimit"
)

// Every limiter under test is configured alike, as far as each library
// allows: a billion events a second (one per nanosecond, the clock's
// resolution) and, where there is a bucket, a billion tokens in it, so that
// the benchmark path is never refused and always takes a token. Each loop
// checks that no call is refused, so a benchmark cannot silently measure a
// refusal.
const (
	limitRate  = 1e9
	limitBurst = 1e9
)

// BenchmarkLimiter runs the same workload against each library. Names are
// api=…/mode=…/lib=…, so that benchstat -col /lib puts the libraries side
// by side:
//
//   - api=allow: ask for one event, non-blocking where the library can
//     (seawall Limiter.Allow, x/time/rate Limiter.Allow). uber-go/ratelimit
//     has only the blocking Take, which sleeps until the event's turn; at
//     one event per nanosecond with WithoutSlack it has nothing to sleep
//     for (a call takes longer than 1ns), so Take is its closest
//     equivalent: the same bookkeeping, a clock read and a CAS, as seawall.
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one limiter with b.RunParallel.
func BenchmarkLimiter(b *testing.B) {
	type lib struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}
	apis := []struct {
		name string
		libs []lib
	}{
		{"allow", []lib{
			{"seawall", benchSeawallLimiterAllow},
			{"xrate", benchXrateAllow},
			{"uber", benchUberTake},
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

func benchSeawallLimiterAllow(b *testing.B, parallel bool) {
	l, err := ratelimit.New(ratelimit.Config{Rate: limitRate, Burst: limitBurst})
	if err != nil {
		b.Fatal(err)
	}
	countRefused(b, parallel, l.Allow)
}

func benchXrateAllow(b *testing.B, parallel bool) {
	l := rate.NewLimiter(limitRate, limitBurst)
	countRefused(b, parallel, l.Allow)
}

// benchUberTake: uber-go/ratelimit cannot refuse, only delay; see
// BenchmarkLimiter. Its rate is an int of events per second.
func benchUberTake(b *testing.B, parallel bool) {
	l := uberrl.New(int(limitRate), uberrl.WithoutSlack)
	if !parallel {
		for b.Loop() {
			l.Take()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Take()
		}
	})
}

// countRefused runs allow b.N times, serially or in parallel, and reports
// the share it refused as refused/op: the allowed path should refuse
// nothing, but a goroutine stalled on a busy machine may be refused, which
// is a figure to read, not a reason to abort the run.
func countRefused(b *testing.B, parallel bool, allow func() bool) {
	var refused, calls atomic.Int64
	if !parallel {
		var n, r int64
		for b.Loop() {
			n++
			if !allow() {
				r++
			}
		}
		calls.Store(n)
		refused.Store(r)
	} else {
		b.RunParallel(func(pb *testing.PB) {
			var n, r int64
			for pb.Next() {
				n++
				if !allow() {
					r++
				}
			}
			calls.Add(n)
			refused.Add(r)
		})
	}
	if c := calls.Load(); c > 0 {
		b.ReportMetric(float64(refused.Load())/float64(c), "refused/op")
	}
}
