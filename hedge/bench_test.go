package hedge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func newBench(b *testing.B, cfg Config) *Hedge {
	b.Helper()
	h, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkFirstAnswers measures the fast path: the first attempt answers
// before the hedge delay, so no hedge starts. delay=fixed reads no clock.
// delay=p95 reads it twice and records the latency; its delay starts warm
// (an hour) but follows the op's own latency of a few hundred ns down
// within a few thousand calls, after which about 5% of calls are hedged, as
// designed: the hedges/call metric reports how many were. Serial and
// parallel.
func BenchmarkFirstAnswers(b *testing.B) {
	op := func(context.Context) (int, error) { return 1, nil }
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"delay=fixed", Config{Delay: time.Hour}},
		{"delay=p95", Config{Percentile: 0.95}},
	} {
		setup := func(b *testing.B) *Hedge {
			h := newBench(b, tt.cfg)
			if h.hist != nil {
				for range minSamples {
					h.hist.add(int64(time.Hour))
				}
			}
			if _, ok := h.Delay(); !ok {
				b.Fatal("no delay")
			}
			return h
		}
		b.Run(tt.name+"/Serial", func(b *testing.B) {
			h := setup(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Get(ctx, h, op, nil); err != nil {
					b.Fatal(err)
				}
			}
			if h.hist == nil && h.Metrics().Hedges != 0 {
				b.Fatal("hedged")
			}
			b.ReportMetric(float64(h.Metrics().Hedges)/float64(b.N), "hedges/call")
		})
		b.Run(tt.name+"/Parallel", func(b *testing.B) {
			h := setup(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := Get(ctx, h, op, nil); err != nil {
						panic(err)
					}
				}
			})
		})
	}
}

// BenchmarkDo measures Do, the seawall.Policy form, on the fast path.
func BenchmarkDo(b *testing.B) {
	h := newBench(b, Config{Delay: time.Hour})
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Do(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor is what any hedging design pays on BenchmarkFirstAnswers'
// path, measured in the same run so that the two read side by side: a
// cancellable context for the first attempt (context.WithCancel on the
// caller's ctx, and its cancel), a timer armed and stopped (time.AfterFunc
// and Stop), and the op; for delay=p95 also two clock reads (time.Now,
// time.Since) and an atomic add to a histogram bucket shared by every
// goroutine, as the Hedge's is. Serial and parallel.
func BenchmarkFloor(b *testing.B) {
	op := func(context.Context) (int, error) { return 1, nil }
	fire := func() { panic("fired") }
	var buckets [nBuckets]atomic.Uint64
	floor := func(ctx context.Context, clock bool) (int, error) {
		var start time.Time
		if clock {
			start = time.Now()
		}
		actx, cancel := context.WithCancel(ctx)
		t := time.AfterFunc(time.Hour, fire)
		v, err := op(actx)
		t.Stop()
		cancel()
		if clock && err == nil {
			buckets[bucketOf(int64(time.Since(start)))].Add(1)
		}
		return v, err
	}
	for _, tt := range []struct {
		name  string
		clock bool
	}{
		{"delay=fixed", false},
		{"delay=p95", true},
	} {
		b.Run(tt.name+"/Serial", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := floor(ctx, tt.clock); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"/Parallel", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := floor(ctx, tt.clock); err != nil {
						panic(err)
					}
				}
			})
		})
	}
}
