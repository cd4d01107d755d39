package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// Config configures an [Injector]. The zero value is valid and injects
// nothing, even once enabled: each kind of fault has a rate, and a rate of
// 0 (the default) never injects it.
//
// Config is JSON-taggable so operators can keep a game day's faults in a
// file; Latency and Jitter are written as Go duration strings ("250ms") or
// integer nanoseconds. Err, Select and Rand are code, not configuration,
// and have no JSON form. A key that names no field is an error (see
// [Config.UnmarshalJSON]).
type Config struct {
	// Enabled starts the Injector enabled. Default false: a new Injector
	// injects nothing until [Injector.Enable] is called, so that a Config
	// loaded at start-up cannot inject faults by accident; a game day's
	// file says "enabled": true on purpose.
	Enabled bool `json:"enabled,omitempty"`

	// ErrorRate is the fraction of selected calls, in [0,1], that fail
	// with Err without running the operation. Default 0.
	ErrorRate float64 `json:"errorRate,omitempty"`

	// Err is the error an injected failure returns. Default [ErrInjected],
	// which is not a seawall rejection: a breaker counts it as a failure
	// and a retry retries it, as they would a dependency's error. Set it to
	// a rejection (seawall.NewRejection), perhaps with a hint
	// (seawall.WithRetryAfter), to rehearse overload instead.
	Err error `json:"-"`

	// LatencyRate is the fraction of selected calls, in [0,1], that are
	// delayed by Latency (plus jitter) before they run, or before their
	// injected error. Default 0. It is an error to set it without Latency.
	LatencyRate float64 `json:"latencyRate,omitempty"`

	// Latency is the delay of a delayed call. Default 0.
	Latency time.Duration `json:"latency,omitempty"`

	// Jitter, if positive, adds to each delay a random extra in
	// [0, Jitter), so that delayed calls do not all end at once. Default 0.
	Jitter time.Duration `json:"jitter,omitempty"`

	// Select, if not nil, picks the calls faults may be injected into:
	// only a call whose context it reports true for (one tenant, one
	// route, requests marked by a test) can be delayed or failed. It runs
	// only while the Injector is enabled, and must be safe for concurrent
	// use. Default nil: every call.
	Select func(ctx context.Context) bool `json:"-"`

	// Rand returns a uniform random number in [0,1); the Injector draws
	// one per rate it tests, and one more for a jittered delay. It must be
	// safe for concurrent use if the Injector is. Default math/rand/v2's
	// Float64. Tests set it to a seeded source (behind a mutex if calls
	// run concurrently) to make every decision reproducible.
	Rand func() float64 `json:"-"`
}

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("fault: %s %v %s", field, v, want)
	}
	rate := func(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 1 }
	switch {
	case !rate(c.ErrorRate):
		return c, bad("ErrorRate", c.ErrorRate, "out of range [0,1]")
	case !rate(c.LatencyRate):
		return c, bad("LatencyRate", c.LatencyRate, "out of range [0,1]")
	case c.Latency < 0:
		return c, bad("Latency", c.Latency, "is negative")
	case c.Jitter < 0:
		return c, bad("Jitter", c.Jitter, "is negative")
	case c.Jitter > math.MaxInt64-c.Latency:
		return c, bad("Jitter", c.Jitter, fmt.Sprintf("overflows with Latency %v", c.Latency))
	case c.LatencyRate > 0 && c.Latency+c.Jitter == 0:
		return c, bad("LatencyRate", c.LatencyRate, "is set, but Latency and Jitter are 0")
	}
	if c.Err == nil {
		c.Err = ErrInjected
	}
	return c, nil
}

// MarshalJSON encodes c with Latency and Jitter as Go duration strings.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Latency jsonx.Duration `json:"latency,omitempty"`
		Jitter  jsonx.Duration `json:"jitter,omitempty"`
	}{plain(c), jsonx.Duration(c.Latency), jsonx.Duration(c.Jitter)})
}

// UnmarshalJSON decodes c, accepting Latency and Jitter as Go duration
// strings ("250ms") or integer nanoseconds; New validates the values.
//
// A key that matches no field, such as a misspelt "errorRtae", is always
// an error naming it (`fault: config: unknown field "errorRtae"`), even
// when the caller's json.Decoder allows unknown fields: a typo in a game
// day's file must not silently leave a rate at 0. Keys match as
// encoding/json matches them, ignoring case.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		Latency *jsonx.Duration `json:"latency,omitempty"`
		Jitter  *jsonx.Duration `json:"jitter,omitempty"`
	}{
		plain:   (*plain)(c),
		Latency: (*jsonx.Duration)(&c.Latency),
		Jitter:  (*jsonx.Duration)(&c.Jitter),
	}
	return jsonx.DecodeConfig("fault: config", b, &aux)
}
