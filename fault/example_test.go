package fault_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/fault"
)

// An Injector injects nothing until it is enabled; then it fails a
// fraction of calls with fault.ErrInjected, which a breaker or a retry
// takes for a dependency's failure.
func Example() {
	r := rand.New(rand.NewPCG(1, 2)) // a fixed seed: the same faults every run
	inj, err := fault.New(fault.Config{ErrorRate: 0.3, Rand: r.Float64})
	if err != nil {
		panic(err)
	}
	call := func(context.Context) error { return nil } // the dependency
	run := func() (failed int) {
		for range 100 {
			if err := inj.Do(context.Background(), call); errors.Is(err, fault.ErrInjected) {
				failed++
			}
		}
		return failed
	}
	fmt.Println("off:", run(), "of 100 failed")
	inj.Enable()
	fmt.Println("on: ", run(), "of 100 failed")
	inj.Disable()
	m := inj.Metrics()
	fmt.Printf("seen while on %d, errors injected %d\n", m.Calls, m.Errors)
	fmt.Println("a rejection?", errors.Is(fault.ErrInjected, seawall.ErrRejected))
	// Output:
	// off: 0 of 100 failed
	// on:  20 of 100 failed
	// seen while on 100, errors injected 20
	// a rejection? false
}

// Apply is the primitive: it waits the injected delay and returns the
// injected error, and the caller decides what a fault looks like (here, a
// middleware would answer with a status).
func ExampleInjector_Apply() {
	inj, err := fault.New(fault.Config{Enabled: true, ErrorRate: 0.5, Rand: func() float64 { return 0.25 }})
	if err != nil {
		panic(err)
	}
	if err := inj.Apply(context.Background()); err != nil {
		fmt.Println("answer 503:", err)
	}
	// Output: answer 503: fault: injected
}
