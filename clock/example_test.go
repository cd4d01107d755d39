package clock_test

import (
	"fmt"
	"time"

	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/ratelimit"
)

// A coarse clock is created and stopped by its user, and handed to the
// policies that should read it.
func Example() {
	clk, err := clock.NewCoarse(time.Millisecond)
	if err != nil {
		panic(err)
	}
	defer clk.Stop() // ends its goroutine; reads then use the runtime's clock

	lim, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 3, Clock: clk})
	if err != nil {
		panic(err)
	}
	for range 4 {
		fmt.Println(lim.Allow())
	}

	_, err = clock.NewCoarse(0)
	fmt.Println(err)
	// Output:
	// true
	// true
	// true
	// false
	// clock: tick 0s out of range [100µs,1s]
}
