package hedge

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// Config configures a [Hedge]. The zero value is valid: up to 2 attempts
// (the first and one hedge), the hedge started once the first attempt has
// taken longer than the 95th percentile of recent attempts' latencies, and
// no hedge at all until 128 latencies have been seen (see [Config.Delay]),
// so that a new Hedge adds no load before it knows what slow means.
//
// Config is JSON-taggable so operators can keep it in a file; Delay is
// written as a Go duration string ("50ms") or integer nanoseconds. A key
// that names no field is an error (see [Config.UnmarshalJSON]). The hooks
// (NonFatal, Budget, Gate) are code, not configuration, and are not
// encoded.
type Config struct {
	// MaxAttempts is how many attempts a call may make at once, including
	// the first, from 1 to 10; default 2. 1 turns hedging off.
	MaxAttempts int `json:"maxAttempts,omitempty"`

	// Delay is how long an attempt runs before the next attempt is
	// started alongside it. With Percentile 0 and Delay > 0 the delay is
	// fixed. With Percentile set (or both zero, the default), Delay is the
	// delay used until the Hedge has seen 128 latencies; 0 means no hedge
	// until then. Default 0.
	Delay time.Duration `json:"delay,omitempty"`

	// Percentile, in (0,1), makes the delay the Percentile-quantile of the
	// latencies of recent successful attempts, recomputed every 64
	// latencies from a lock-free histogram that halves its counts every
	// 1024, so it follows the dependency as it changes. Default 0.95 if
	// Delay is 0; 0 with Delay > 0 means a fixed Delay.
	Percentile float64 `json:"percentile,omitempty"`

	// NonFatal reports whether an attempt's error is non-fatal: one that
	// lets the other attempts go on and starts the next hedge at once (or
	// after the retry-after hint it carries, seawall.RetryAfter: a gRPC
	// pushback, an HTTP Retry-After). Any other error is fatal: it cancels
	// every attempt and is returned. Default
	// [DefaultNonFatal]. It may be called from several goroutines at once.
	NonFatal func(error) bool `json:"-"`

	// Budget, if not nil, is asked before every hedge (never before the
	// first attempt): a hedge starts only if AllowRetry returns true. A
	// *retry.Budget satisfies it; share one with a retry policy so that
	// retries and hedges together stay within it. A refusal starts no more
	// hedges for the call, and cancels no attempt already running.
	Budget Budget `json:"-"`

	// Gate, if not nil, is asked before every hedge: a hedge starts only
	// while Gate returns true, e.g. func() bool { return br.State() !=
	// breaker.Open } to send no hedge to a target whose breaker is open.
	// It runs outside any lock of the Hedge and may be called from several
	// goroutines at once.
	Gate func() bool `json:"-"`
}

// Budget is the retry budget hedges spend from. *retry.Budget satisfies
// it. If the Budget also has a Request() method (as *retry.Budget does),
// the Hedge calls it once per call, so a budget that only hedges use still
// counts the requests its ratio is taken of. A retry that shares the
// budget and wraps the Hedge counts its request itself, once: give the
// Hedge [SpendOnly] of the budget, so that the request is not counted
// again for each retry attempt.
type Budget interface {
	AllowRetry() bool
}

// SpendOnly returns b seen through its AllowRetry alone, without a
// Request method: hedges spend from it and count no requests, for a
// budget whose requests a retry wrapping the Hedge counts (see [Budget]).
// httpmw and grpcmw do so when hedging inside their retries.
func SpendOnly(b Budget) Budget { return spendOnly{b} }

type spendOnly struct{ b Budget }

func (s spendOnly) AllowRetry() bool { return s.b.AllowRetry() }

// Limits and defaults of configuration values.
const (
	defaultMaxAttempts = 2
	maxMaxAttempts     = 10
	defaultPercentile  = 0.95
)

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("hedge: %s %v %s", field, v, want)
	}
	switch {
	case c.MaxAttempts < 0 || c.MaxAttempts > maxMaxAttempts:
		return c, bad("MaxAttempts", c.MaxAttempts, fmt.Sprintf("out of range [1,%d]", maxMaxAttempts))
	case c.Delay < 0:
		return c, bad("Delay", c.Delay, "is negative")
	case math.IsNaN(c.Percentile) || c.Percentile < 0 || c.Percentile >= 1:
		return c, bad("Percentile", c.Percentile, "out of range (0,1)")
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	if c.Percentile == 0 && c.Delay == 0 {
		c.Percentile = defaultPercentile
	}
	if c.NonFatal == nil {
		c.NonFatal = DefaultNonFatal
	}
	return c, nil
}

// MarshalJSON encodes c with Delay as a Go duration string.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Delay jsonx.Duration `json:"delay,omitempty"`
	}{plain(c), jsonx.Duration(c.Delay)})
}

// UnmarshalJSON decodes c, accepting Delay as a Go duration string
// ("50ms") or integer nanoseconds; New validates the values. A key that
// matches no field, such as a misspelt "maxAttempt", is always an error
// naming it, even when the caller's json.Decoder allows unknown fields.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		Delay *jsonx.Duration `json:"delay,omitempty"`
	}{
		plain: (*plain)(c),
		Delay: (*jsonx.Duration)(&c.Delay),
	}
	return jsonx.DecodeConfig("hedge: config", b, &aux)
}
