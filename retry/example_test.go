package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/retry"
)

// Retry an operation that fails once, then succeeds. (A new client's
// default budget lends it one retry per 5s window, its floor, until its
// requests earn more: see retry.BudgetConfig.)
func Example() {
	r, err := retry.New(retry.Config{
		MaxAttempts: 4,                // including the first
		Delay:       time.Millisecond, // then 2ms, 4ms, with full jitter
		OnRetry: func(attempt int, err error, _ time.Duration) {
			fmt.Printf("attempt %d failed: %v\n", attempt, err)
		},
	})
	if err != nil {
		panic(err)
	}
	calls := 0
	err = r.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 2 {
			return errors.New("account service: unavailable")
		}
		return nil
	})
	fmt.Println("result:", err, "after", calls, "attempts")
	// Output:
	// attempt 1 failed: account service: unavailable
	// result: <nil> after 2 attempts
}

// The loop form allocates nothing, even when the body captures variables.
func ExampleRetry_Loop() {
	r, err := retry.New(retry.Config{MaxAttempts: 3, Delay: time.Millisecond})
	if err != nil {
		panic(err)
	}
	var balance int
	l := r.Loop(context.Background())
	for l.Next() {
		balance = 42 // a call that succeeds at once
		l.Record(nil)
	}
	fmt.Println(balance, l.Err(), l.Attempt())
	// Output: 42 <nil> 1
}

// Permanent errors are never retried, and the final error says how many
// attempts were made while still matching the operation's error.
func ExamplePermanent() {
	r, err := retry.New(retry.Config{})
	if err != nil {
		panic(err)
	}
	errNotFound := errors.New("account not found")
	err = r.Do(context.Background(), func(context.Context) error {
		return seawall.Permanent(errNotFound)
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, errNotFound))
	// Output:
	// retry: 1 attempt; last error: account not found
	// true
}

// A server's retry-after hint longer than the time left before the deadline
// ends the retries at once: waiting would be pointless.
func ExampleConfig_hint() {
	r, err := retry.New(retry.Config{})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = r.Do(ctx, func(context.Context) error {
		return seawall.WithRetryAfter(errors.New("503 Service Unavailable"), 30*time.Second)
	})
	fmt.Println(errors.Is(err, retry.ErrDeadline))
	// Output: true
}

// Retry on a value: poll a job until it is no longer pending. When the
// attempts run out, the caller gets the last value and an error wrapping
// retry.ErrResult.
func ExampleGetIf() {
	r, err := retry.New(retry.Config{
		MaxAttempts: 3,
		Delay:       time.Millisecond,
		Budget:      retry.BudgetConfig{Disabled: true},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	pending := func(status string) bool { return status == "pending" }

	polls := 0
	status, err := retry.GetIf(ctx, r, func(context.Context) (string, error) {
		polls++
		if polls < 2 {
			return "pending", nil
		}
		return "done", nil
	}, pending)
	fmt.Println(status, err, "after", polls, "polls")

	status, err = retry.GetIf(ctx, r, func(context.Context) (string, error) {
		return "pending", nil
	}, pending)
	fmt.Println(status, errors.Is(err, retry.ErrResult), err)
	// Output:
	// done <nil> after 2 polls
	// pending true retry: 3 attempts; last error: retry: result not accepted
}
