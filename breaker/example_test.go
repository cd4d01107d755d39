package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
)

var errUnavailable = errors.New("account service: unavailable")

// A breaker trips after repeated failures and then fails calls fast, without
// running them.
func Example() {
	b, err := breaker.New(breaker.Config{
		FailureRate:  0.5,
		CountWindow:  10,
		MinimumCalls: 4,
		OpenDuration: 30 * time.Second,
		OnStateChange: func(c breaker.StateChange) {
			fmt.Printf("%s: %v -> %v (%v: %d of %d calls failed)\n",
				c.Name, c.From, c.To, c.Cause, c.Counts.Failures, c.Counts.Calls)
		},
		Name: "accounts",
	})
	if err != nil {
		panic(err)
	}
	getAccount := func(context.Context) error { return errUnavailable }

	for i := range 6 {
		err := b.Do(context.Background(), getAccount)
		d, hinted := seawall.RetryAfter(err)
		fmt.Printf("call %d: %v (rejected: %v, retry-after hint: %v)\n",
			i, err, errors.Is(err, seawall.ErrRejected), hinted && d > 0)
	}
	// Output:
	// call 0: account service: unavailable (rejected: false, retry-after hint: false)
	// call 1: account service: unavailable (rejected: false, retry-after hint: false)
	// call 2: account service: unavailable (rejected: false, retry-after hint: false)
	// accounts: closed -> open (failure-rate: 4 of 4 calls failed)
	// call 3: account service: unavailable (rejected: false, retry-after hint: false)
	// call 4: breaker: open (rejected: true, retry-after hint: true)
	// call 5: breaker: open (rejected: true, retry-after hint: true)
}

// The primitive layer: ask for a permit, make the call, record the outcome.
// It takes no lock and allocates nothing on the success path.
func ExampleBreaker_Allow() {
	b, err := breaker.New(breaker.Config{ConsecutiveFailures: 2})
	if err != nil {
		panic(err)
	}
	for _, callErr := range []error{nil, errUnavailable, errUnavailable, nil} {
		p, err := b.Allow()
		if err != nil {
			fmt.Println("not called:", err)
			continue
		}
		p.Done(callErr) // exactly once per permit
		fmt.Println("called, breaker now", b.State())
	}
	// Output:
	// called, breaker now closed
	// called, breaker now closed
	// called, breaker now open
	// not called: breaker: open
}

// Classify decides what counts as a failure: here a "not found" answer means
// the dependency is healthy.
func ExampleConfig_classify() {
	errNotFound := errors.New("not found")
	b, err := breaker.New(breaker.Config{
		ConsecutiveFailures: 1,
		Classify: func(err error) breaker.Outcome {
			if errors.Is(err, errNotFound) {
				return breaker.Success
			}
			return breaker.DefaultClassify(err)
		},
	})
	if err != nil {
		panic(err)
	}
	_ = b.Do(context.Background(), func(context.Context) error { return errNotFound })
	fmt.Println(b.State(), b.Metrics().Successes)
	// Output: closed 1
}

// New rejects a bad configuration with an error naming the field and value.
func ExampleNew_validation() {
	_, err := breaker.New(breaker.Config{FailureRate: 1.5, CountWindow: 100})
	fmt.Println(err)
	// Output: breaker: FailureRate 1.5 out of range (0,1]
}

// A Group keeps one breaker per key: a failing host does not stop calls to a
// healthy one.
func ExampleGroup() {
	g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1}, 100)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = g.Do(ctx, "eu.accounts.internal", func(context.Context) error { return errUnavailable })

	fmt.Println(g.Do(ctx, "eu.accounts.internal", func(context.Context) error { return nil }))
	fmt.Println(g.Do(ctx, "us.accounts.internal", func(context.Context) error { return nil }))
	// Output:
	// breaker: open
	// <nil>
}

// Breakers compose with other policies through seawall.Pipeline.
func ExampleBreaker_Do_pipeline() {
	b, err := breaker.New(breaker.Config{})
	if err != nil {
		panic(err)
	}
	logging := seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		err := op(ctx)
		fmt.Println("attempt finished:", err)
		return err
	})
	p := seawall.Pipeline(logging, b) // logging sees the breaker's rejections too
	_ = p.Do(context.Background(), func(context.Context) error { return nil })
	// Output: attempt finished: <nil>
}
