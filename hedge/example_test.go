package hedge_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall/hedge"
)

// A slow first attempt is hedged after the delay; the hedge answers first
// and wins, and the first attempt's context is cancelled.
func Example() {
	h, err := hedge.New(hedge.Config{Delay: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	var attempts atomic.Int32
	v, err := hedge.Get(context.Background(), h, func(ctx context.Context) (string, error) {
		if attempts.Add(1) == 1 {
			<-ctx.Done() // a stuck replica: answers only when cancelled
			return "", ctx.Err()
		}
		return "from the hedge", nil
	}, nil)
	fmt.Println(v, err)
	m := h.Metrics()
	fmt.Printf("calls %d, hedges %d, won by a hedge %d\n", m.Calls, m.Hedges, m.HedgeWins)
	// Output:
	// from the hedge <nil>
	// calls 1, hedges 1, won by a hedge 1
}

// Do is the seawall.Policy form. If every attempt fails, the first
// attempt's error is returned.
func ExampleHedge_Do() {
	h, err := hedge.New(hedge.Config{Delay: time.Hour, MaxAttempts: 3})
	if err != nil {
		panic(err)
	}
	var n atomic.Int32
	err = h.Do(context.Background(), func(ctx context.Context) error {
		// Each failure is non-fatal: the next hedge starts at once.
		return fmt.Errorf("attempt %d failed", n.Add(1))
	})
	fmt.Println(err, "after", n.Load(), "attempts")
	// Output:
	// attempt 1 failed after 3 attempts
}

// A Gate keeps hedges from a target that is failing: here a breaker's
// state, read before each hedge.
func ExampleConfig_gate() {
	var breakerOpen atomic.Bool
	breakerOpen.Store(true)
	asked := make(chan struct{})
	h, err := hedge.New(hedge.Config{
		Delay: time.Millisecond,
		Gate: func() bool {
			close(asked) // asked once: a refusal starts no more hedges
			return !breakerOpen.Load()
		},
	})
	if err != nil {
		panic(err)
	}
	err = h.Do(context.Background(), func(ctx context.Context) error {
		<-asked // slower than the delay, but the gate is shut
		return errors.New("slow and failed")
	})
	m := h.Metrics()
	fmt.Println(err, "| hedges", m.Hedges, "| gate refusals", m.GateRefusals)
	// Output:
	// slow and failed | hedges 0 | gate refusals 1
}
