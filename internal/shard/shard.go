// Package shard provides per-P counters: counters that concurrent callers
// update without contending on a cache line and, on 64-bit platforms,
// without a locked instruction.
//
// A P is the scheduler's logical processor; at most GOMAXPROCS goroutines run
// at once, one per P. A [Counters] set keeps one cache line of counters per P.
// A caller pins itself to its P (no preemption until it unpins), so while
// pinned it is the only goroutine that can touch that P's line, and it can
// increment with a plain load and store. This is the design sync.Pool uses
// for its per-P storage. Readers sum the lines with atomic loads and may see
// an increment a moment late, never a torn or lost one.
//
// Under the race detector, and on platforms whose 64-bit stores are not
// single instructions, increments are atomic adds instead (see inc_*.go), so
// the race detector checks the same logic without false reports.
//
// A P whose index is beyond the lines allocated (GOMAXPROCS can grow at run
// time) shares an overflow line updated with atomic adds.
//
// Picking a shard at random instead costs a random draw a call and
// collides; hashing a goroutine's stack address collides for the
// goroutines' lifetime; a locked add contends on one cache line.
package shard

import (
	"runtime"
	"sync/atomic"
	_ "unsafe" // for go:linkname
)

// Width is the number of counters a [Counters] line holds.
const Width = 4

// line is one P's counters, padded to a cache line so Ps do not share one.
type line struct {
	n [Width]uint64
	_ [64 - 8*Width]byte
}

// Counters is a set of Width counters, kept per P. Make one with [New], or
// embed one (saving a pointer hop on hot paths) and call Init before use. Its
// methods are safe for concurrent use.
type Counters struct {
	lines    []line
	overflow [Width]atomic.Uint64
}

// New returns counters with a line for each P up to GOMAXPROCS (at most 64).
func New() *Counters {
	c := new(Counters)
	c.Init()
	return c
}

// Init allocates a line for each P up to GOMAXPROCS (at most 64).
func (c *Counters) Init() {
	c.lines = make([]line, min(runtime.GOMAXPROCS(0), 64))
}

// Add adds 1 to counter k, k < Width.
func (c *Counters) Add(k int) {
	i := procPin()
	c.AddPinned(i, k)
	procUnpin()
}

// AddPinned adds 1 to counter k of P i, which the caller has pinned itself
// to with Pin: the inlinable form of Add for hot paths.
func (c *Counters) AddPinned(i, k int) {
	if i < len(c.lines) {
		inc(&c.lines[i].n[k])
	} else {
		c.overflow[k].Add(1)
	}
}

// Load returns the sum of counter k over all Ps.
func (c *Counters) Load(k int) uint64 {
	n := c.overflow[k].Load()
	for i := range c.lines {
		n += atomic.LoadUint64(&c.lines[i].n[k])
	}
	return n
}

// Pin pins the calling goroutine to its P and returns the P's index. Until
// Unpin the goroutine must not block, and is the only one running on that P.
// Callers use it to index their own per-P data (keeping other writes to it
// atomic) and must call Unpin promptly.
func Pin() int { return procPin() }

// Unpin undoes Pin.
func Unpin() { procUnpin() }

// runtime.procPin and runtime.procUnpin are reached by linkname. Since Go
// 1.23 the linker refuses "pull" linknames to runtime internals unless the
// runtime marks them as kept for packages that already use them
// (go.dev/issue/67401); these two are marked so ("Do not remove or change
// the type signature"), sync.Pool's own per-P storage is built on them, and
// shard_test.go fails if a Go release changes what they do.
//
// Why a plain increment under procPin, read by atomic loads elsewhere, is
// sound. It depends on three things:
//   - procPin disables preemption of the calling goroutine (it increments
//     the M's lock count): until procUnpin the goroutine stays on its P, and
//     no other goroutine runs on that P. So each line has one writer at a
//     time, and a read-modify-write of it loses no increment.
//   - Successive writers of a line (goroutines that ran on the same P one
//     after the other, possibly on different threads) are ordered by the
//     scheduler's own synchronisation when it hands the P from one to the
//     next, so each sees the last one's value.
//   - The inc_plain.go build is used only where a 64-bit store is a single
//     instruction (and never under the race detector, which would report the
//     deliberate race): the Go memory model promises that a racing read of a
//     machine word observes some earlier write, never a torn value, so a
//     reader's atomic load sees the old count or the new one.
//
// If GOMAXPROCS grows past the lines allocated, the extra Ps use the
// overflow counters with atomic adds.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()
