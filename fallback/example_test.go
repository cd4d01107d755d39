package fallback_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/fallback"
)

// A Fallback around a pipeline: when the call fails, or the breaker
// rejects it, the caller gets the last good price instead.
func Example() {
	br, err := breaker.New(breaker.Config{ConsecutiveFailures: 1})
	if err != nil {
		panic(err)
	}
	pipeline := seawall.Pipeline(br)

	lastGood := 100 // a cache of the last good answer
	fb, err := fallback.New(fallback.Config[int]{
		Fallback: func(_ context.Context, err error) (int, error) {
			fmt.Println("  falling back after:", err)
			return lastGood, nil
		},
	})
	if err != nil {
		panic(err)
	}

	price := func(up bool) func(context.Context) (int, error) {
		return func(context.Context) (int, error) {
			if !up {
				return 0, errors.New("pricing: unavailable")
			}
			return 120, nil
		}
	}
	ctx := context.Background()
	for i, up := range []bool{true, false, true} {
		v, err := fb.Get(ctx, func(ctx context.Context) (int, error) {
			return seawall.Get(ctx, pipeline, price(up))
		})
		if err == nil && v != lastGood {
			lastGood = v
		}
		fmt.Printf("call %d: price %d, err %v\n", i, v, err)
	}
	m := fb.Metrics()
	fmt.Printf("fell back %d, failed %d\n", m.FellBack, m.Failed)
	// Output:
	// call 0: price 120, err <nil>
	//   falling back after: pricing: unavailable
	// call 1: price 120, err <nil>
	//   falling back after: breaker: open
	// call 2: price 120, err <nil>
	// fell back 2, failed 0
}

// The error-only form, a seawall.Policy: a failed write is queued for
// later, and the caller sees success.
func ExamplePolicy() {
	var queued []string
	p, err := fallback.NewPolicy(fallback.PolicyConfig{
		Fallback: func(_ context.Context, err error) error {
			queued = append(queued, "event-1")
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	err = seawall.Pipeline(p).Do(context.Background(), func(context.Context) error {
		return errors.New("broker: unreachable")
	})
	fmt.Println(err, queued)
	// Output:
	// <nil> [event-1]
}
