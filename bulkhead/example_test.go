package bulkhead_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/bulkhead"
)

// A bulkhead runs at most MaxConcurrent calls at once; with no queue, the
// default, a call beyond that is rejected at once.
func Example() {
	b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	err = b.Do(ctx, func(ctx context.Context) error {
		// While this call runs, the bulkhead is full.
		err := b.Do(ctx, func(context.Context) error { return nil })
		fmt.Printf("nested call: %v (rejected: %v)\n", err, errors.Is(err, seawall.ErrRejected))
		return nil
	})
	fmt.Println("first call:", err)
	m := b.Metrics()
	fmt.Printf("admitted %d, rejected %d, in flight %d\n", m.Admitted, m.Rejected, m.InFlight)
	// Output:
	// nested call: bulkhead: full (rejected: true)
	// first call: <nil>
	// admitted 1, rejected 1, in flight 0
}

// The primitive layer: take a slot without waiting, and give it back.
func ExampleBulkhead_TryAcquire() {
	b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 2})
	if err != nil {
		panic(err)
	}
	for i := range 3 {
		if !b.TryAcquire() {
			fmt.Printf("call %d: rejected\n", i)
			continue
		}
		fmt.Printf("call %d: admitted\n", i)
		// The call runs here, holding its slot; a real caller would
		// defer b.Release().
	}
	b.Release()
	fmt.Println("after one release:", b.TryAcquire())
	b.Release()
	b.Release()
	// Output:
	// call 0: admitted
	// call 1: admitted
	// call 2: rejected
	// after one release: true
}

// With a queue, a call that finds the bulkhead full waits for a slot, first
// in first out, for at most MaxWait; a released slot is handed to the
// oldest waiter.
func ExampleBulkhead_Acquire() {
	b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxWaiting: 10, MaxWait: time.Minute})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil { // the only slot
		panic(err)
	}

	go func() {
		// The holder of the slot finishes once someone waits for it.
		for b.Metrics().Waiting == 0 {
			runtime.Gosched()
		}
		b.Release()
	}()
	err = b.Acquire(ctx) // waits in the queue
	m := b.Metrics()
	fmt.Printf("after waiting: %v; admitted %d, in flight %d, waiting %d\n", err, m.Admitted, m.InFlight, m.Waiting)
	b.Release()
	// Output:
	// after waiting: <nil>; admitted 2, in flight 1, waiting 0
}
