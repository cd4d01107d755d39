package benchmarks

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/seawall-go/seawall/retry"
)

// cenkalti/backoff/v4's BackOff satisfies retry.BackOff, so its policies plug
// into retry.Config.BackOff without seawall importing it.
var _ retry.BackOff = backoff.BackOff(nil)

// TestCenkaltiBackOffAdapter runs a real cenkalti policy through a seawall
// Retry: its delays are used, and its Stop ends the retries.
func TestCenkaltiBackOffAdapter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := retry.New(retry.Config{
			MaxAttempts: 10,
			Budget:      retry.BudgetConfig{Disabled: true}, // a fresh budget's floor is one retry a window; this is about the adapter
			BackOff: func() retry.BackOff {
				return backoff.WithMaxRetries(backoff.NewConstantBackOff(250*time.Millisecond), 3)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		errDown := errors.New("down")
		var starts []time.Time
		err = r.Do(t.Context(), func(context.Context) error {
			starts = append(starts, time.Now())
			return errDown
		})
		if !errors.Is(err, errDown) {
			t.Fatalf("err = %v, want it to wrap %v", err, errDown)
		}
		if len(starts) != 4 {
			t.Fatalf("%d attempts, want 4: the first and cenkalti's 3 retries, then its Stop", len(starts))
		}
		for i := 1; i < len(starts); i++ {
			if d := starts[i].Sub(starts[i-1]); d != 250*time.Millisecond {
				t.Errorf("wait %d = %v, want cenkalti's 250ms", i, d)
			}
		}
	})
}
