package clock

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Limits on the tick of a [Coarse] clock, beyond which NewCoarse returns an
// error. Below MinTick the goroutine's wake-ups cost more CPU than they
// save on most loads; above MaxTick the readings are too stale for a rate
// limiter or a time window to mean much.
const (
	MinTick = 100 * time.Microsecond
	MaxTick = time.Second
)

// stopped is the reading a stopped clock stores: reads then fall back to
// the runtime's clock.
const stopped = -1

// A Coarse clock is a monotonic clock that a goroutine of its own advances
// every tick, so that reading it is one atomic load. It is made by
// [NewCoarse], which starts the goroutine, and must be stopped with
// [Coarse.Stop] when no longer needed. The zero value is not usable.
//
// Its reading is the monotonic time elapsed since the clock was created
// ([Coarse.Start]), as time.Since(start) returned it when the goroutine
// last woke. Readings never go backwards and never run ahead of the
// runtime's monotonic clock; they lag it by less than tick plus however
// late the goroutine wakes: L, say. On an idle machine L is under one tick;
// on a saturated one the goroutine may wait for a processor, and L grows
// by that wait. Under testing/synctest the goroutine runs in the bubble,
// on the bubble's fake time, and wakes exactly on time: a reading is then
// the elapsed time rounded down to a multiple of tick.
//
// What a lag of L means for a policy that reads the clock: a rate limiter
// sees its tokens come up to L late, and a time window's buckets turn up to
// L late; see the Clock field of each policy's Config.
//
// After Stop, reads fall back to the runtime's monotonic clock (the same
// time, measured from the same start, exact and as expensive as before), so
// a policy still using the clock keeps working and never stalls.
//
// A Coarse clock is safe for concurrent use by multiple goroutines.
type Coarse struct {
	// The padding keeps the reading, read by every call of every policy
	// that uses the clock and written once per tick, on a cache line of its
	// own, with the read-only start: no write to a neighbouring object evicts
	// it from readers' caches.
	_     [64]byte
	now   atomic.Int64 // ns since start, as of the last tick; stopped after Stop
	start time.Time    // carries a monotonic reading
	_     [64 - 8 - 24]byte

	tick time.Duration
	stop chan struct{} // closed by Stop
	done chan struct{} // closed by the goroutine when it returns
	once sync.Once
	_    [64]byte
}

// NewCoarse starts a coarse clock that advances every tick, in
// [MinTick, MaxTick], or returns an error naming tick if it is out of range.
// The clock starts a goroutine; call [Coarse.Stop] to end it.
func NewCoarse(tick time.Duration) (*Coarse, error) {
	if tick < MinTick || tick > MaxTick {
		return nil, fmt.Errorf("clock: tick %v out of range [%v,%v]", tick, MinTick, MaxTick)
	}
	c := &Coarse{
		start: time.Now(),
		tick:  tick,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	// now is 0: the clock reads its start until the first tick.
	t := time.NewTicker(tick)
	go c.run(t)
	return c, nil
}

// run advances the reading every tick until Stop. It is the only writer
// of c.now before Stop, and time.Since(start) is monotonic, so the reading
// never goes back; the max guards that in one place.
func (c *Coarse) run(t *time.Ticker) {
	defer close(c.done)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			last = max(last, int64(time.Since(c.start)))
			c.now.Store(last)
		}
	}
}

// Elapsed returns the time elapsed since the clock's start, as of its last
// tick: the clock's reading. It is one atomic load, and allocates nothing.
// After Stop it returns time.Since(c.Start()).
func (c *Coarse) Elapsed() time.Duration {
	if t, ok := c.Read(); ok {
		return t
	}
	return time.Since(c.start)
}

// Read returns the clock's reading, as Elapsed does, and true; or false
// once the clock is stopped, when the caller should read the runtime's
// clock itself, as time.Since(c.Start()). It is Elapsed for callers that
// read the runtime's clock anyway when they have no coarse one: its only
// cost is an atomic load, so it inlines into their own code for reading
// the clock, where a call of Elapsed would not.
func (c *Coarse) Read() (time.Duration, bool) {
	t := c.now.Load()
	return time.Duration(t), t >= 0
}

// Now returns the clock's reading as a time: Start().Add(Elapsed()). It
// carries a monotonic reading, so Sub and Since between such times are
// monotonic; its wall time is the start's plus the elapsed time.
func (c *Coarse) Now() time.Time { return c.start.Add(c.Elapsed()) }

// Start returns the time at which the clock was created, which its
// readings count from. It carries a monotonic reading.
func (c *Coarse) Start() time.Time { return c.start }

// Tick returns the interval at which the clock advances.
func (c *Coarse) Tick() time.Duration { return c.tick }

// Stop stops the clock's goroutine and returns once it has returned. Reads
// then fall back to the runtime's monotonic clock (see [Coarse]). Stop is
// idempotent and safe to call from several goroutines; each call returns
// after the goroutine is gone.
func (c *Coarse) Stop() {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.now.Store(stopped)
	})
}
