package clock

import (
	"sync/atomic"
	"testing"
	"time"
)

var sink atomic.Int64

// BenchmarkRead measures a clock read, serial and parallel: the runtime's
// (time.Now, and time.Since of a start, which reads only the monotonic
// clock), a Coarse clock's Elapsed, and its floor, the atomic load of a
// shared int64 on a cache line of its own.
func BenchmarkRead(b *testing.B) {
	start := time.Now()
	c, err := NewCoarse(time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	var floor struct {
		_ [64]byte
		v atomic.Int64
		_ [56]byte
	}
	floor.v.Store(1)
	reads := []struct {
		name string
		read func() int64
	}{
		{"TimeNow", func() int64 { return time.Now().UnixNano() }},
		{"TimeSince", func() int64 { return int64(time.Since(start)) }},
		{"Coarse", func() int64 { return int64(c.Elapsed()) }},
		{"AtomicLoad", floor.v.Load},
	}
	for _, r := range reads {
		b.Run("read="+r.name+"/mode=serial", func(b *testing.B) {
			b.ReportAllocs()
			var x int64
			for b.Loop() {
				x += r.read()
			}
			sink.Add(x)
		})
		b.Run("read="+r.name+"/mode=parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var x int64
				for pb.Next() {
					x += r.read()
				}
				sink.Add(x)
			})
		})
	}
}
