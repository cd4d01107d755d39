package breaker

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
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
