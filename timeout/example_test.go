package timeout_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/timeout"
)

// A timeout gives the operation a context with a deadline; when it
// expires, Do returns an error that matches both timeout.ErrTimeout and
// context.DeadlineExceeded.
func Example() {
	t, err := timeout.New(timeout.Config{Timeout: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	err = t.Do(context.Background(), func(ctx context.Context) error {
		<-ctx.Done() // a slow dependency: the call outlives the timeout
		return ctx.Err()
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, timeout.ErrTimeout), errors.Is(err, context.DeadlineExceeded))

	// A caller that gives up first gets its own error back.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = t.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	fmt.Println(err, errors.Is(err, timeout.ErrTimeout))
	m := t.Metrics()
	fmt.Printf("calls %d, timed out %d\n", m.Calls, m.TimedOut)
	// Output:
	// timeout: timed out after 10ms
	// true true
	// context canceled false
	// calls 2, timed out 1
}

// Inside a retry, a timeout bounds each attempt, and an attempt that timed
// out is retried.
func Example_perAttempt() {
	r, err := retry.New(retry.Config{MaxAttempts: 3, Delay: time.Millisecond})
	if err != nil {
		panic(err)
	}
	perAttempt, err := timeout.New(timeout.Config{Timeout: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	attempt := 0
	err = seawall.Pipeline(r, perAttempt).Do(context.Background(), func(ctx context.Context) error {
		attempt++
		if attempt == 1 {
			<-ctx.Done() // the first attempt hangs
			return ctx.Err()
		}
		return nil
	})
	fmt.Printf("attempts %d, err %v\n", attempt, err)
	// Output:
	// attempts 2, err <nil>
}
