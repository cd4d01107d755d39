package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/ratelimit"
)

// A limiter of 2 events a second with a burst of 3 admits 3 events at once,
// then refuses, with a hint of when to come back.
func Example() {
	lim, err := ratelimit.New(ratelimit.Config{Rate: 2, Burst: 3})
	if err != nil {
		panic(err)
	}
	for i := range 4 {
		fmt.Printf("event %d allowed: %v\n", i, lim.Allow())
	}
	err = lim.Try(1)
	d, _ := seawall.RetryAfter(err)
	fmt.Printf("%v (rejected: %v, retry after about %v)\n",
		err, errors.Is(err, seawall.ErrRejected), d.Round(100*time.Millisecond))
	// Output:
	// event 0 allowed: true
	// event 1 allowed: true
	// event 2 allowed: true
	// event 3 allowed: false
	// ratelimit: limited (rejected: true, retry after about 500ms)
}

// Do is the seawall.Policy: it runs the operation if a token is available
// and rejects it at once otherwise.
func ExampleLimiter_Do() {
	lim, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1})
	if err != nil {
		panic(err)
	}
	call := func(context.Context) error { fmt.Println("called"); return nil }
	for range 2 {
		if err := lim.Do(context.Background(), call); errors.Is(err, ratelimit.ErrLimited) {
			fmt.Println("not called:", err)
		}
	}
	// Output:
	// called
	// not called: ratelimit: limited
}

// Wait blocks until a token is available, but fails at once if that would be
// after the context's deadline.
func ExampleLimiter_Wait() {
	lim, err := ratelimit.New(ratelimit.Config{Rate: 0.1, Burst: 1}) // a token every 10s
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fmt.Println(lim.Wait(ctx)) // the bucket's token
	start := time.Now()
	err = lim.Wait(ctx) // the next comes in 10s, after the deadline
	fmt.Println(err, "after waiting", time.Since(start).Round(time.Second))
	// Output:
	// <nil>
	// ratelimit: limited after waiting 0s
}

// Reserve takes the tokens now and says how long to wait before acting.
func ExampleLimiter_ReserveN() {
	lim, err := ratelimit.New(ratelimit.Config{Rate: 10, Burst: 5})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	for range 3 {
		r := lim.ReserveN(now, 4)
		fmt.Println(r.OK(), r.DelayFrom(now))
	}
	fmt.Println(lim.ReserveN(now, 6).OK()) // more than the burst
	// Output:
	// true 0s
	// true 300ms
	// true 700ms
	// false
}

// Keyed keeps one bucket per client, in bounded memory.
func ExampleKeyed() {
	perClient, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{
		Config:  ratelimit.Config{Rate: 1, Burst: 2},
		MaxKeys: 100_000,
	})
	if err != nil {
		panic(err)
	}
	for _, client := range []string{"alice", "alice", "alice", "bob"} {
		fmt.Println(client, perClient.Allow(client))
	}
	// Output:
	// alice true
	// alice true
	// alice false
	// bob true
}
