package preset_test

import (
	"fmt"
	"net/http"

	"github.com/seawall-go/seawall/preset"
)

// An operator's file, valid setting by setting, whose settings defeat one
// another: Load refuses it, naming each setting and its value.
func ExampleLoad() {
	_, err := preset.Load([]byte(`
rateLimit:
  rate: 2          # calls per second
timeout: 10s
attemptTimeout: 15s
retry:
  maxAttempts: 3
  delay: 1s
`))
	fmt.Println(err)
	// Output:
	// preset: attemptTimeout 15s exceeds timeout 10s: no attempt could last that long; lower attemptTimeout or raise timeout
	// preset: breaker.minimumCalls 100 (default) can never be reached: rateLimit.rate 2/s admits at most 60 calls in breaker.timeWindow 30s (default), so the breaker could never trip; lower breaker.minimumCalls to 60 or less, or lengthen breaker.timeWindow to 50s or more
}

// A misspelt key is named with its path and line.
func ExampleLoad_unknownKey() {
	_, err := preset.Load([]byte(`
timeout: 10s
retry:
  budget:
    windw: 10s
`))
	fmt.Println(err)
	// Output:
	// preset: config: unknown field "retry.budget.windw" (line 5)
}

// Settings from a file, the defaults for the rest, as the transport of an
// http.Client.
func ExampleNewHTTPTransport() {
	cfg, err := preset.Load([]byte(`{"timeout": "5s", "attemptTimeout": "1s", "retry": {"delay": "100ms"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	t, err := preset.NewHTTPTransport(nil, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: t} // no Timeout: the preset's total timeout bounds each call
	_ = client
	fmt.Println(cfg.WithDefaults().Retry.MaxAttempts, cfg.WithDefaults().Breaker.TimeWindow)
	// Output:
	// 4 30s
}
