package adaptive_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
)

// A Limiter with the default Config in front of a dependency: Do runs the
// call under a permit and records its latency.
func Example() {
	l, err := adaptive.New(adaptive.Config{})
	if err != nil {
		panic(err)
	}
	err = l.Do(context.Background(), func(ctx context.Context) error {
		return nil // call the dependency
	})
	fmt.Println(err, l.Limit())
	// Output: <nil> 10
}

// The primitive for middleware: Acquire a permit, and give it back with
// the call's outcome.
func ExampleLimiter_Acquire() {
	l, err := adaptive.New(adaptive.Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
	if err != nil {
		panic(err)
	}
	p, err := l.Acquire(context.Background())
	if err != nil {
		panic(err)
	}
	_, err = l.Acquire(context.Background()) // over the limit: refused at once
	fmt.Println(errors.Is(err, adaptive.ErrLimited), seawall.IsOverload(err))
	p.Done(nil) // the outcome of the call, nil for a success
	// Output: true true
}
