package bulkhead

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrFull is returned when the bulkhead refuses a call: every slot is taken
// and the queue is full, or absent (MaxWaiting 0), or the call waited
// MaxWait in the queue without getting a slot. It matches
// seawall.ErrRejected with errors.Is.
var ErrFull = seawall.NewRejection("bulkhead: full")

// The state word packs the calls in flight (the low 32 bits) and the calls
// waiting in the queue (the high 32 bits). The limits of Config keep both
// below 1<<31, so a word below the limit means "no one waits and a slot is
// free", and a word at or above 1<<31 after Release means "someone waits, or
// Release was called without a matching acquire".
const (
	waiterOne    = 1 << 32
	inflightMask = 1<<32 - 1
	releaseSlow  = 1 << 31

	minusWaiter = ^uint64(waiterOne - 1) // adds -waiterOne
	grant       = ^uint64(waiterOne - 2) // adds 1 - waiterOne: one more in flight, one fewer waiting
)

func inflightOf(w uint64) int { return int(w & inflightMask) }
func waitingOf(w uint64) int  { return int(w >> 32) }

// A Bulkhead limits how many calls run at once, so that one slow dependency
// cannot take every goroutine, connection or thread of its callers: calls
// beyond the limit wait in a bounded first-in first-out queue, or are
// rejected with [ErrFull].
//
// Up to MaxConcurrent calls are in flight at once. A call that finds every
// slot taken joins the queue, if it holds fewer than MaxWaiting calls, and
// waits until a slot is handed to it, its context ends, or MaxWait passes.
// A released slot goes straight to the oldest waiter; while anyone waits, no
// newcomer can take a slot ahead of it, not even with TryAcquire. The limit
// can be changed at run time with [Bulkhead.SetLimit].
//
// There are two ways to use it. The primitive: [Bulkhead.TryAcquire] (never
// waits) or [Bulkhead.Acquire] (may wait), then [Bulkhead.Release] when the
// call is over; TryAcquire and Release take no lock and allocate nothing,
// and Acquire neither unless it has to wait. The convenience: [Bulkhead.Do]
// runs a function in a slot, satisfying seawall.Policy.
//
// The zero Config is valid (see [Config]). A Bulkhead is safe for concurrent
// use by multiple goroutines.
type Bulkhead struct {
	// state packs the calls in flight and the calls waiting (see
	// inflightOf, waitingOf): acquiring and releasing a slot is one atomic
	// operation on it. limit, read by every acquire and written only by
	// SetLimit, shares its cache line; the padding keeps the fields below,
	// written on other paths, off it.
	state atomic.Uint64
	limit atomic.Int64
	_     [48]byte

	counts shard.Counters // per-P: cAdmitted, cRejected
	waitNs atomic.Int64   // total time admitted waiters waited

	maxWaiting int
	maxWait    time.Duration

	mu         sync.Mutex // guards the queue, and SetLimit
	head, tail *waiter    // the queue, oldest first; its length is waitingOf(state)

	slot obs.Slot // the registry that named this bulkhead, if any
}

// Indexes of the per-P counters.
const (
	cAdmitted = iota
	cRejected
)

// A waiter is a call waiting in the queue.
type waiter struct {
	prev, next *waiter
	ready      chan struct{} // receives one value when the slot is granted
	granted    bool          // a slot was handed over; guarded by Bulkhead.mu
}

// New returns a bulkhead configured by cfg, or an error naming the first
// invalid field of cfg.
func New(cfg Config) (*Bulkhead, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Bulkhead{maxWaiting: cfg.MaxWaiting, maxWait: cfg.MaxWait}
	b.limit.Store(int64(cfg.MaxConcurrent))
	b.counts.Init()
	return b, nil
}

// TryAcquire takes a slot if one is free and no call is waiting for one,
// without waiting, and reports whether it did. A caller that gets a slot must
// give it back with exactly one call of [Bulkhead.Release]. A false result
// counts as a rejection in [Bulkhead.Metrics].
func (b *Bulkhead) TryAcquire() bool {
	if b.tryAcquire() {
		b.counts.Add(cAdmitted)
		return true
	}
	b.counts.Add(cRejected)
	return false
}

// tryAcquire takes a slot if one is free and no call waits.
func (b *Bulkhead) tryAcquire() bool {
	w := b.state.Load()
	// A word below the limit has no waiters and fewer calls in flight than
	// the limit.
	if w < uint64(b.limit.Load()) && b.state.CompareAndSwap(w, w+1) {
		return true
	}
	return b.tryAcquireSlow()
}

// tryAcquireSlow retries tryAcquire after a lost race.
func (b *Bulkhead) tryAcquireSlow() bool {
	for {
		w := b.state.Load()
		if w >= uint64(b.limit.Load()) {
			return false
		}
		if b.state.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// Acquire takes a slot, waiting for one in the queue if the bulkhead is full.
// A caller that gets a slot (a nil error) must give it back with exactly one
// call of [Bulkhead.Release].
//
// Acquire returns ErrFull at once if every slot is taken and the queue is
// full (or MaxWaiting is 0), and ErrFull after MaxWait in the queue (if
// MaxWait is set). If ctx ends first, or has already ended when Acquire is
// called, Acquire returns ctx.Err() unchanged and leaves the queue; a slot
// handed to it in the meantime is passed on to the next waiter.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	if done := ctx.Done(); done != nil {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
	}
	if b.tryAcquire() {
		b.counts.Add(cAdmitted)
		return nil
	}
	return b.wait(ctx)
}

// wait queues the caller until a slot is handed to it, ctx ends or MaxWait
// passes.
func (b *Bulkhead) wait(ctx context.Context) error {
	if b.maxWaiting == 0 {
		b.counts.Add(cRejected)
		return ErrFull
	}
	start := time.Now()
	b.mu.Lock()
	if b.head == nil && b.tryAcquire() {
		// A slot was freed since the first attempt.
		b.mu.Unlock()
		b.counts.Add(cAdmitted)
		return nil
	}
	if waitingOf(b.state.Load()) >= b.maxWaiting {
		b.mu.Unlock()
		b.counts.Add(cRejected)
		return ErrFull
	}
	w := &waiter{ready: make(chan struct{}, 1)}
	b.push(w)
	// A slot released between the attempt above and the push saw no waiter
	// and handed nothing over: hand it over now.
	b.dispatchLocked()
	granted := w.granted
	b.mu.Unlock()
	if granted {
		return b.admitted(start)
	}

	var timeout <-chan time.Time
	if b.maxWait > 0 {
		t := time.NewTimer(b.maxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ready:
		return b.admitted(start)
	case <-ctx.Done():
		b.mu.Lock()
		if w.granted {
			// Granted as the context ended: pass the slot on.
			b.state.Add(^uint64(0))
			b.dispatchLocked()
		} else {
			b.remove(w)
		}
		b.mu.Unlock()
		return ctx.Err()
	case <-timeout:
		b.mu.Lock()
		granted := w.granted
		if !granted {
			b.remove(w)
		}
		b.mu.Unlock()
		if granted {
			return b.admitted(start) // granted as MaxWait passed: keep it
		}
		b.counts.Add(cRejected)
		return ErrFull
	}
}

// admitted counts the admission of a waiter that started waiting at start.
func (b *Bulkhead) admitted(start time.Time) error {
	d := time.Since(start)
	b.waitNs.Add(int64(d))
	b.counts.Add(cAdmitted)
	obs.Emit(&b.slot, obs.Event{Type: obs.Waited, Duration: d})
	return nil
}

// push appends w to the queue and counts it in the state word. b.mu must be
// held.
func (b *Bulkhead) push(w *waiter) {
	w.prev = b.tail
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
	b.state.Add(waiterOne)
}

// remove takes the ungranted waiter w out of the queue. b.mu must be held.
func (b *Bulkhead) remove(w *waiter) {
	b.unlink(w)
	b.state.Add(minusWaiter)
}

func (b *Bulkhead) unlink(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.prev, w.next = nil, nil
}

// dispatchLocked hands free slots to the oldest waiters. b.mu must be held.
//
// While b.mu is held the queue's length is the state word's waiter count, so
// while the queue is not empty only dispatchLocked can raise the in-flight
// count (tryAcquire fails when anyone waits); concurrent releases only lower
// it. A slot seen free here therefore stays free until taken here.
func (b *Bulkhead) dispatchLocked() {
	for b.head != nil {
		if int64(inflightOf(b.state.Load())) >= b.limit.Load() {
			return
		}
		w := b.head
		b.unlink(w)
		b.state.Add(grant)
		w.granted = true
		w.ready <- struct{}{} // buffered: never blocks
	}
}

// Release gives back a slot taken by [Bulkhead.TryAcquire] or
// [Bulkhead.Acquire]: the oldest waiter, if any, gets it at once.
//
// A Release without a matching acquire is a programming error: Release
// panics, as golang.org/x/sync/semaphore does, when no slot is held at all,
// and leaves the bulkhead as it was. (Slots are counted, not owned: an extra
// Release while other calls hold slots goes unnoticed, and frees one of
// theirs.)
func (b *Bulkhead) Release() {
	if w := b.state.Add(^uint64(0)); w >= releaseSlow {
		b.releaseSlow(w)
	}
}

// releaseSlow hands the slot just released to a waiter, or panics if it was
// not taken.
func (b *Bulkhead) releaseSlow(w uint64) {
	if w&inflightMask == inflightMask {
		// The in-flight count was 0: undo, and report the misuse. A waiter
		// may have missed a slot while the word was wrong; dispatch again.
		b.state.Add(1)
		b.mu.Lock()
		b.dispatchLocked()
		b.mu.Unlock()
		panic("bulkhead: Release without a matching acquire")
	}
	b.mu.Lock()
	b.dispatchLocked()
	b.mu.Unlock()
}

// Do runs op in a slot: it acquires one as [Bulkhead.Acquire] does, and
// returns Acquire's error (ErrFull or ctx.Err()) without running op if it
// cannot; otherwise it runs op(ctx), releases the slot and returns op's
// error unchanged. If op panics, the slot is released before the panic
// continues.
func (b *Bulkhead) Do(ctx context.Context, op func(context.Context) error) error {
	if err := b.Acquire(ctx); err != nil {
		return err
	}
	defer b.Release()
	return op(ctx)
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy, so that a pipeline through the
// bulkhead allocates nothing. (Do does not call it: a closure passed to Do
// would then escape to the heap.)
func (b *Bulkhead) DoChain(ctx context.Context, c seawall.Chain) error {
	if err := b.Acquire(ctx); err != nil {
		return err
	}
	defer b.Release()
	return c.Run(ctx)
}

// SetLimit sets the number of calls that may be in flight at once, from 1 to
// 1<<30. Raising it hands the new slots to waiters at once, oldest first.
// Lowering it revokes nothing: calls in flight go on, and the in-flight count
// may exceed the new limit until enough of them finish. A TryAcquire that
// runs concurrently with SetLimit may be admitted under the old limit.
func (b *Bulkhead) SetLimit(n int) error {
	if n < 1 || n > maxConcurrent {
		return fmt.Errorf("bulkhead: limit %d out of range [1,%d]", n, maxConcurrent)
	}
	b.mu.Lock()
	b.limit.Store(int64(n))
	b.dispatchLocked()
	b.mu.Unlock()
	return nil
}

// Limit returns the number of calls that may be in flight at once:
// MaxConcurrent, or the last value set with SetLimit.
func (b *Bulkhead) Limit() int { return int(b.limit.Load()) }

// Metrics is a snapshot of a bulkhead's gauges and of its counters since it
// was created.
type Metrics struct {
	Limit    int `json:"limit"`    // calls that may hold a slot at once (see [Bulkhead.Limit])
	InFlight int `json:"inFlight"` // calls holding a slot
	Waiting  int `json:"waiting"`  // calls waiting in the queue
	// Admitted counts the slots given: by TryAcquire, by Acquire and Do
	// without waiting, and to waiters.
	Admitted uint64 `json:"admitted"`
	// Rejected counts TryAcquire calls that got no slot and Acquire and Do
	// calls that returned ErrFull. Calls whose context ended are not counted.
	Rejected uint64 `json:"rejected"`
	// WaitTime is the total time admitted waiters spent in the queue (in
	// JSON, integer nanoseconds).
	WaitTime time.Duration `json:"waitTime"`
}

// Metrics returns a snapshot of the bulkhead's gauges and counters, read from
// atomics without stopping calls; counters of calls in progress may be one
// behind.
func (b *Bulkhead) Metrics() Metrics {
	w := b.state.Load()
	return Metrics{
		Limit:    int(b.limit.Load()),
		InFlight: inflightOf(w),
		Waiting:  waitingOf(w),
		Admitted: b.counts.Load(cAdmitted),
		Rejected: b.counts.Load(cRejected),
		WaitTime: time.Duration(b.waitNs.Load()),
	}
}

// Registration is how package registry names the bulkhead and hears of its
// waits. Its result is opaque outside this module.
func (b *Bulkhead) Registration() *obs.Slot { return &b.slot }
