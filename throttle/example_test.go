package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// A backend that refuses work: once it has refused more than K requests
// per accepted one, the throttle rejects requests itself, with a
// probability that follows the refusals, and a retry does not repeat its
// rejections.
func Example() {
	draw := 1.0 // a deterministic source for the example: 1 never rejects
	t, err := throttle.New(throttle.Config{Rand: func() float64 { return draw }})
	if err != nil {
		panic(err)
	}
	overloaded := seawall.WithRetryAfter(seawall.NewRejection("backend: overloaded"), time.Second)
	ctx := context.Background()
	for range 3 {
		_ = t.Do(ctx, func(context.Context) error { return nil })
	}
	for range 9 {
		_ = t.Do(ctx, func(context.Context) error { return overloaded })
	}
	fmt.Printf("12 requests, 3 accepted: rejects %.3f\n", t.Probability())

	draw = 0.3 // below the probability
	r, err := retry.New(retry.Config{MaxAttempts: 3})
	if err != nil {
		panic(err)
	}
	attempts := 0
	err = r.Do(ctx, func(ctx context.Context) error {
		attempts++
		return t.Do(ctx, func(context.Context) error { return nil })
	})
	fmt.Println(errors.Is(err, throttle.ErrThrottled), "after", attempts, "attempt")
	m := t.Metrics()
	fmt.Printf("requests %d, accepts %d, throttled %d\n", m.Requests, m.Accepts, m.Throttled)
	// Output:
	// 12 requests, 3 accepted: rejects 0.462
	// true after 1 attempt
	// requests 13, accepts 3, throttled 1
}

// The primitive layer, as a transport uses it around each attempt.
func ExampleThrottle_Allow() {
	t, err := throttle.New(throttle.Config{})
	if err != nil {
		panic(err)
	}
	p, err := t.Allow()
	if err != nil {
		fmt.Println(err) // throttle.ErrThrottled: do not send
		return
	}
	var callErr error // the attempt's outcome
	p.Done(callErr)
	fmt.Println(t.Metrics().Accepts)
	// Output: 1
}
