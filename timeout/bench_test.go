package timeout

import (
	"context"
	"testing"
	"time"

	"github.com/seawall-go/seawall"
)

// BenchmarkDo measures a call that succeeds under a timeout that does not
// expire, serial and parallel, beside its floor (context.WithTimeout, the
// call, cancel) and through a one-policy seawall.Pipeline (DoChain).
func BenchmarkDo(b *testing.B) {
	to, err := New(Config{Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	op := func(ctx context.Context) error { return ctx.Err() }
	pipe := seawall.Pipeline(to)
	floor := func() error {
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return op(dctx)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Do", func() error { return to.Do(ctx, op) }},
		{"Pipeline", func() error { return pipe.Do(ctx, op) }},
		{"Floor", floor},
	} {
		b.Run(c.name+"/Serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.call(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.call(); err != nil {
						panic(err)
					}
				}
			})
		})
	}
}

// BenchmarkAbandon measures Abandon mode's success path: a goroutine and a
// channel per call.
func BenchmarkAbandon(b *testing.B) {
	to, err := New(Config{Timeout: time.Minute, Abandon: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	op := func(ctx context.Context) error { return ctx.Err() }
	b.ReportAllocs()
	for b.Loop() {
		if err := to.Do(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
}
