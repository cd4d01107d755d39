// Package bulkhead provides a bulkhead: a limit on how many calls to a
// dependency run at once, with a bounded first-in first-out queue.
//
// A bulkhead keeps one slow dependency from taking every goroutine,
// connection or thread of its callers, as the watertight compartments of a
// ship keep one leak from sinking it. At most MaxConcurrent calls hold a
// slot; a call that finds every slot taken waits in a queue of at most
// MaxWaiting calls, for at most MaxWait or until its context ends, or is
// rejected at once when the queue is full (or absent: the default):
//
//	          slot free, no one waiting
//	call ───────────────────────────────────▶ runs (in flight)
//	  │                                           │ Release
//	  │ full                                      ▼
//	  ├── queue not full ──▶ waits (FIFO) ──▶ the released slot is handed over
//	  │                        │
//	  │                        ├── MaxWait passes ──▶ ErrFull
//	  │                        └── ctx ends ──────▶ ctx.Err()
//	  └── queue full ──▶ ErrFull
//
// A released slot goes straight to the oldest waiter, so waiters are served
// in order and no newcomer overtakes them. The limit can be raised or
// lowered at run time ([Bulkhead.SetLimit]); lowering it revokes no call in
// flight. See [Config].
//
// # Two layers
//
// The primitive, for hot paths, takes no lock and allocates nothing unless
// it has to wait:
//
//	if !b.TryAcquire() { // never waits
//		return bulkhead.ErrFull
//	}
//	defer b.Release()
//	resp, err := call()
//
// or, to wait in the queue when the bulkhead is full:
//
//	if err := b.Acquire(ctx); err != nil {
//		return err // ErrFull, or ctx.Err()
//	}
//	defer b.Release()
//
// The convenience, [Bulkhead.Do], runs a function in a slot and satisfies
// seawall.Policy, so it composes with other policies in a seawall.Pipeline.
// If the function panics, its slot is released before the panic continues.
//
// # Errors
//
// A rejection matches [ErrFull] and seawall.ErrRejected; a call whose
// context ends while it waits returns the context's error unchanged.
// A Release when no slot is held panics: a programming error, as in
// golang.org/x/sync/semaphore.
//
// # Observability
//
// [Bulkhead.Metrics] returns the calls in flight and waiting, the slots
// given and the calls rejected, and the total time waiters waited, read
// from atomics.
//
// # Cost
//
// The calls in flight and the calls waiting share one atomic word: a free
// slot is taken with one compare-and-swap, and given back with one atomic
// add that takes a lock only when someone waits. The slots given are
// counted per P (scheduler processor), without a locked instruction. So
// TryAcquire plus Release costs two locked instructions and nothing more;
// two goroutines taking and releasing slots of one bulkhead in parallel
// contend on its word. BENCHMARKS.md has the figures. A call that waits
// allocates its place in the queue (and a timer, with MaxWait) and reads the
// clock twice, to measure its wait.
package bulkhead
