package seawall_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seawall-go/seawall"
)

// A pipeline composes policies; the first is the outermost, so it sees the
// call first and the result last.
func Example() {
	logging := func(name string) seawall.Policy {
		return seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
			fmt.Println(name, "enter")
			err := op(ctx)
			fmt.Println(name, "exit:", err)
			return err
		})
	}
	p := seawall.Pipeline(logging("outer"), logging("inner"))

	err := p.Do(context.Background(), func(context.Context) error {
		fmt.Println("operation")
		return errors.New("account service: unavailable")
	})
	fmt.Println("result:", err)
	// Output:
	// outer enter
	// inner enter
	// operation
	// inner exit: account service: unavailable
	// outer exit: account service: unavailable
	// result: account service: unavailable
}

// Get runs an operation that returns a value under a policy. Here a
// retry-like policy runs the operation a second time after a failure, and Get
// returns the value of the attempt that succeeded.
func ExampleGet() {
	retryOnce := seawall.PolicyFunc(func(ctx context.Context, op func(context.Context) error) error {
		if err := op(ctx); err == nil {
			return nil
		}
		return op(ctx)
	})

	attempt := 0
	balance, err := seawall.Get(context.Background(), retryOnce, func(context.Context) (int, error) {
		attempt++
		if attempt == 1 {
			return 0, errors.New("connection reset")
		}
		return 120, nil
	})
	fmt.Println(balance, err, "after", attempt, "attempts")
	// Output:
	// 120 <nil> after 2 attempts
}

// A policy attaches a retry-after hint to its rejection; the hint survives
// wrapping by the caller.
func ExampleWithRetryAfter() {
	errLimited := seawall.NewRejection("ratelimit: limited")

	err := seawall.WithRetryAfter(errLimited, 1500*time.Millisecond)
	err = fmt.Errorf("get account 42: %w", err)

	d, ok := seawall.RetryAfter(err)
	fmt.Println(err)
	fmt.Println(d, ok, errors.Is(err, errLimited))
	// Output:
	// get account 42: ratelimit: limited
	// 1.5s true true
}

// RetryAfter finds a hint anywhere in an error's tree, including behind
// fmt.Errorf's %w; an error without one reports no hint.
func ExampleRetryAfter() {
	overloaded := seawall.WithRetryAfter(errors.New("payments: overloaded"), 2*time.Second)

	for _, err := range []error{
		fmt.Errorf("charge card: %w", overloaded),
		errors.New("payments: card declined"),
	} {
		if d, ok := seawall.RetryAfter(err); ok {
			fmt.Printf("%v: retry in %v\n", err, d)
		} else {
			fmt.Printf("%v: no hint\n", err)
		}
	}
	// Output:
	// charge card: payments: overloaded: retry in 2s
	// payments: card declined: no hint
}

// Permanent marks an error that retrying cannot fix; the mark survives
// wrapping and keeps the original error visible to errors.Is.
func ExamplePermanent() {
	errInvalid := errors.New("accounts: invalid id")

	err := fmt.Errorf("get account: %w", seawall.Permanent(errInvalid))
	fmt.Println(err)
	fmt.Println(seawall.IsPermanent(err), errors.Is(err, errInvalid))
	fmt.Println(seawall.IsPermanent(errors.New("accounts: timeout")))
	// Output:
	// get account: accounts: invalid id
	// true true
	// false
}

// A policy declares its rejection sentinel with NewRejection: callers can test
// for that policy's rejection, or for any rejection with ErrRejected.
func ExampleNewRejection() {
	errOpen := seawall.NewRejection("breaker: open")
	errFull := seawall.NewRejection("bulkhead: full")

	err := fmt.Errorf("get account: %w", errOpen)
	fmt.Println(err)
	fmt.Println("open:", errors.Is(err, errOpen))
	fmt.Println("rejected:", errors.Is(err, seawall.ErrRejected))
	fmt.Println("full:", errors.Is(err, errFull))
	// Output:
	// get account: breaker: open
	// open: true
	// rejected: true
	// full: false
}
