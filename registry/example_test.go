package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
)

func Example() {
	// A logger without timestamps, so that the output is deterministic.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	reg, err := registry.New(registry.WithLogger(logger))
	if err != nil {
		panic(err)
	}
	br, _ := breaker.New(breaker.Config{ConsecutiveFailures: 3})
	rt, _ := retry.New(retry.Config{})
	if err := reg.Register("accounts", br); err != nil {
		panic(err)
	}
	if err := reg.Register("accounts.retry", rt); err != nil {
		panic(err)
	}
	for range 3 {
		_ = br.Do(context.Background(), func(context.Context) error { return errors.New("boom") })
	}
	reg.Range(func(p registry.Policy) bool {
		fmt.Println(p.Name, p.Kind)
		return true
	})
	// Output:
	// level=WARN msg="seawall: breaker closed → open" seawall.policy=accounts seawall.policy.kind=breaker seawall.breaker.from_state=closed seawall.breaker.to_state=open seawall.breaker.cause=consecutive-failures seawall.breaker.consecutive_failures=3 seawall.breaker.window.calls=0 seawall.breaker.window.failures=0 seawall.breaker.window.slow_calls=0
	// accounts breaker
	// accounts.retry retry
	// accounts.retry.budget retry_budget
}
