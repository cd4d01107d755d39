package shard

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hammer adds from many goroutines at once and returns how many adds each
// counter received.
func hammer(c *Counters, goroutines, adds int) [Width]uint64 {
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range adds {
				c.Add((g + i) % Width)
			}
		})
	}
	wg.Wait()
	var want [Width]uint64
	for g := range goroutines {
		for i := range adds {
			want[(g+i)%Width]++
		}
	}
	return want
}

// TestCountersLoseNothing: without the race detector this exercises the
// plain increments of pinned goroutines; concurrent adds must all be counted.
func TestCountersLoseNothing(t *testing.T) {
	c := New()
	want := hammer(c, 4*runtime.GOMAXPROCS(0), 50_000)
	for k := range Width {
		assert.Equal(t, want[k], c.Load(k), "counter %d", k)
	}
}

// TestCountersOverflow: Ps beyond the lines allocated (GOMAXPROCS grew after
// New) share the atomic overflow line and lose nothing either. Which P a
// goroutine runs on is the scheduler's choice, so the overflow line is
// exercised directly, with P indexes past the lines, from concurrent
// goroutines; then a real hammer with more Ps than lines loses nothing.
func TestCountersOverflow(t *testing.T) {
	c := &Counters{lines: make([]line, 1)} // as if made when GOMAXPROCS was 1
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10_000 {
				c.AddPinned(1+g%3, i%Width) // Ps 1..3: beyond the one line
			}
		})
	}
	wg.Wait()
	for k := range Width {
		assert.Equal(t, uint64(8*10_000/Width), c.overflow[k].Load(), "overflow counter %d", k)
		assert.Equal(t, uint64(8*10_000/Width), c.Load(k), "counter %d", k)
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	c = &Counters{lines: make([]line, 1)}
	want := hammer(c, 16, 20_000)
	for k := range Width {
		assert.Equal(t, want[k], c.Load(k), "counter %d", k)
	}
}

func TestPinIndexIsAP(t *testing.T) {
	for range 100 {
		i := Pin()
		Unpin()
		assert.GreaterOrEqual(t, i, 0)
		assert.Less(t, i, runtime.GOMAXPROCS(0))
	}
}

func BenchmarkAdd(b *testing.B) {
	c := New()
	b.Run("Serial", func(b *testing.B) {
		for b.Loop() {
			c.Add(0)
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(0)
			}
		})
	})
}
