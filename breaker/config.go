package breaker

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/internal/jsonx"
)

// Config configures a [Breaker]. The zero value is valid: it trips after 5
// consecutive failures and stays open for 5 seconds before admitting one
// probe.
//
// Trip rules combine: the breaker opens as soon as any enabled rule says so.
// Rules are evaluated when a failure or a slow call is recorded, never on a
// fast success, so a success never trips a breaker.
//
// Config is JSON-taggable so operators can keep it in a file; durations are
// written as Go duration strings ("250ms", "1m30s") or integer nanoseconds.
// A key that names no field is an error (see [Config.UnmarshalJSON]), and
// every float field must be finite, in Go as in JSON.
type Config struct {
	// Name identifies the breaker in OnStateChange calls. In a [Group], each
	// breaker is named by its key.
	Name string `json:"name,omitempty"`

	// ConsecutiveFailures trips the breaker after this many failures in a row
	// (a success resets the run; ignored outcomes do not). 0 disables the
	// rule, unless no rule is set at all, in which case it defaults to 5.
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`

	// FailureRate trips the breaker when the share of failures among the calls
	// in the window reaches it, in (0, 1]. 0 disables the rule. A rate rule
	// needs a window: CountWindow or TimeWindow.
	FailureRate float64 `json:"failureRate,omitempty"`

	// SlowCallRate trips the breaker when the share of slow calls (successful
	// or not) among the calls in the window reaches it, in (0, 1]. 0 disables
	// the rule; it requires SlowCallThreshold and a window.
	SlowCallRate float64 `json:"slowCallRate,omitempty"`

	// SlowCallThreshold is the duration from Allow to Done at or above which
	// a call is slow. It is required by SlowCallRate; when set, a slow probe in
	// the half-open state counts as a failed probe.
	SlowCallThreshold time.Duration `json:"slowCallThreshold,omitempty"`

	// CountWindow makes the rate rules look at the last CountWindow calls
	// (at most 100000). Exactly one of CountWindow and TimeWindow must be set
	// when a rate rule is enabled.
	CountWindow int `json:"countWindow,omitempty"`

	// TimeWindow makes the rate rules look at the calls of the last
	// TimeWindow, kept in TimeWindowBuckets buckets; the oldest bucket leaves
	// the window whole, so the window spans between TimeWindow minus one
	// bucket and TimeWindow.
	TimeWindow time.Duration `json:"timeWindow,omitempty"`

	// TimeWindowBuckets is the number of buckets of a TimeWindow, from 1 to
	// 1000; default 10. Each bucket must span at least a millisecond.
	TimeWindowBuckets int `json:"timeWindowBuckets,omitempty"`

	// MinimumCalls is how many calls the window must hold before a rate rule
	// can trip; default 10, or CountWindow if that is smaller. With a
	// CountWindow it may not exceed CountWindow.
	MinimumCalls int `json:"minimumCalls,omitempty"`

	// OpenDuration is how long the breaker stays open after the first trip
	// before it admits probes; default 5s.
	OpenDuration time.Duration `json:"openDuration,omitempty"`

	// OpenBackoff multiplies the open duration for each consecutive trip (a
	// failed probe re-opening the breaker) until the breaker closes again:
	// the n-th consecutive trip stays open OpenDuration × OpenBackoff^(n-1),
	// capped at MaxOpenDuration. Default 1: a fixed open duration. It may not
	// be below 1.
	OpenBackoff float64 `json:"openBackoff,omitempty"`

	// MaxOpenDuration caps the open duration grown by OpenBackoff; default
	// one minute or OpenDuration, whichever is longer.
	MaxOpenDuration time.Duration `json:"maxOpenDuration,omitempty"`

	// OpenJitter shortens each open duration by a random fraction of up to
	// OpenJitter, in [0, 1), so a fleet of breakers that tripped together
	// does not probe in lockstep. Default 0: no jitter.
	OpenJitter float64 `json:"openJitter,omitempty"`

	// HalfOpenProbes is how many probes the half-open state admits at once,
	// from 1 to 65535; default 1. Calls beyond it are rejected with ErrOpen.
	HalfOpenProbes int `json:"halfOpenProbes,omitempty"`

	// HalfOpenSuccesses is how many successful probes close the breaker, from
	// 1 to 65535; default HalfOpenProbes. One failed probe re-opens it.
	HalfOpenSuccesses int `json:"halfOpenSuccesses,omitempty"`

	// Classify decides the outcome of a call that returned a non-nil error
	// (a nil error is always a Success). Default: [DefaultClassify].
	Classify func(err error) Outcome `json:"-"`

	// OnStateChange, if set, is called exactly once for every state
	// transition, by the goroutine whose call made the transition, after the
	// transition and outside any lock: it may call the breaker's methods.
	// The [StateChange] says why (the rule that tripped, a probe's outcome,
	// an operator's override) and carries the counts the rules judged, which
	// the transition resets. Transitions that race may be reported out of
	// order; a slow hook slows only the call that made the transition.
	// Reading [Breaker.State] is never a transition.
	OnStateChange func(StateChange) `json:"-"`

	// Clock, if set, is the clock the breaker reads instead of the
	// runtime's: one atomic load instead of a clock read (about 35 ns on
	// some virtual machines), on the paths that read the clock: every Done
	// with a TimeWindow or a SlowCallThreshold, every Allow with a
	// SlowCallThreshold, and the open period's end. The user creates the
	// clock, may share it among policies, and stops it (see package clock);
	// after Stop the breaker reads the runtime's clock again. Nil, the
	// default, reads the runtime's monotonic clock. A breaker with neither
	// rule reads no clock on its success path either way. In a [Group],
	// every breaker reads the Group's Config.Clock.
	//
	// The price is accuracy. A coarse clock's reading lags real time by L,
	// under one tick when its goroutine wakes on time (see clock.Coarse):
	// a call lands in the TimeWindow bucket of up to L before it ended, so
	// buckets turn, and leave the window, up to L late; a call's duration,
	// for SlowCallThreshold, is measured within a tick either way (a call
	// that takes D reads as more than D - L and less than D + L); and the
	// open period ends up to L late. Pick a tick well below the bucket
	// width (TimeWindow / TimeWindowBuckets, at least 1ms) and below
	// SlowCallThreshold.
	//
	// Clock is not part of the JSON form: a clock is a running object, not
	// a setting.
	Clock *clock.Coarse `json:"-"`
}

// Limits on configuration values, beyond which New returns an error.
const (
	maxCountWindow = 100_000
	maxBuckets     = 1000
	maxProbes      = 1<<probeBits - 1
	minBucketWidth = time.Millisecond
)

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	if err := c.validate(); err != nil {
		return c, err
	}
	if c.ConsecutiveFailures == 0 && c.FailureRate == 0 && c.SlowCallRate == 0 {
		c.ConsecutiveFailures = 5
	}
	if c.TimeWindow > 0 && c.TimeWindowBuckets == 0 {
		c.TimeWindowBuckets = 10
	}
	if c.MinimumCalls == 0 {
		c.MinimumCalls = 10
		if c.CountWindow > 0 && c.CountWindow < 10 {
			c.MinimumCalls = c.CountWindow
		}
	}
	if c.OpenDuration == 0 {
		c.OpenDuration = 5 * time.Second
	}
	if c.MaxOpenDuration > 0 && c.MaxOpenDuration < c.OpenDuration {
		// Checked after the defaults: OpenDuration may be the default 5s.
		return c, fmt.Errorf("breaker: MaxOpenDuration %v is below OpenDuration %v", c.MaxOpenDuration, c.OpenDuration)
	}
	if c.OpenBackoff == 0 {
		c.OpenBackoff = 1
	}
	if c.MaxOpenDuration == 0 {
		c.MaxOpenDuration = max(time.Minute, c.OpenDuration)
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = 1
	}
	if c.HalfOpenSuccesses == 0 {
		c.HalfOpenSuccesses = c.HalfOpenProbes
	}
	if c.Classify == nil {
		c.Classify = DefaultClassify
	}
	return c, nil
}

func (c *Config) validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("breaker: %s %v %s", field, v, want)
	}
	rate := func(field string, v float64) error {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return bad(field, v, "out of range (0,1]")
		}
		return nil
	}
	buckets := c.TimeWindowBuckets
	if buckets <= 0 {
		buckets = 10
	}
	switch {
	case c.ConsecutiveFailures < 0:
		return bad("ConsecutiveFailures", c.ConsecutiveFailures, "is negative")
	case rate("FailureRate", c.FailureRate) != nil:
		return rate("FailureRate", c.FailureRate)
	case rate("SlowCallRate", c.SlowCallRate) != nil:
		return rate("SlowCallRate", c.SlowCallRate)
	case c.SlowCallThreshold < 0:
		return bad("SlowCallThreshold", c.SlowCallThreshold, "is negative")
	case c.SlowCallRate > 0 && c.SlowCallThreshold == 0:
		return fmt.Errorf("breaker: SlowCallRate %v needs a SlowCallThreshold", c.SlowCallRate)
	case c.CountWindow < 0 || c.CountWindow > maxCountWindow:
		return bad("CountWindow", c.CountWindow, fmt.Sprintf("out of range [0,%d]", maxCountWindow))
	case c.TimeWindow < 0:
		return bad("TimeWindow", c.TimeWindow, "is negative")
	case c.CountWindow > 0 && c.TimeWindow > 0:
		return fmt.Errorf("breaker: CountWindow %d and TimeWindow %v both set; choose one", c.CountWindow, c.TimeWindow)
	case (c.FailureRate > 0 || c.SlowCallRate > 0) && c.CountWindow == 0 && c.TimeWindow == 0:
		return fmt.Errorf("breaker: a rate rule (FailureRate %v, SlowCallRate %v) needs a CountWindow or TimeWindow", c.FailureRate, c.SlowCallRate)
	case c.TimeWindowBuckets < 0 || c.TimeWindowBuckets > maxBuckets:
		return bad("TimeWindowBuckets", c.TimeWindowBuckets, fmt.Sprintf("out of range [1,%d]", maxBuckets))
	case c.TimeWindowBuckets > 0 && c.TimeWindow == 0:
		return bad("TimeWindowBuckets", c.TimeWindowBuckets, "set without a TimeWindow")
	case c.TimeWindow > 0 && c.TimeWindow/time.Duration(buckets) < minBucketWidth:
		return bad("TimeWindow", c.TimeWindow, fmt.Sprintf("too short for %d buckets of at least %v", buckets, minBucketWidth))
	case c.MinimumCalls < 0:
		return bad("MinimumCalls", c.MinimumCalls, "is negative")
	case c.CountWindow > 0 && c.MinimumCalls > c.CountWindow:
		return fmt.Errorf("breaker: MinimumCalls %d exceeds CountWindow %d, so the rate rules could never trip", c.MinimumCalls, c.CountWindow)
	case c.OpenDuration < 0:
		return bad("OpenDuration", c.OpenDuration, "is negative")
	case math.IsNaN(c.OpenBackoff) || math.IsInf(c.OpenBackoff, 0) || (c.OpenBackoff != 0 && c.OpenBackoff < 1):
		return bad("OpenBackoff", c.OpenBackoff, "out of range [1,+Inf)")
	case c.MaxOpenDuration < 0:
		return bad("MaxOpenDuration", c.MaxOpenDuration, "is negative")
	case math.IsNaN(c.OpenJitter) || c.OpenJitter < 0 || c.OpenJitter >= 1:
		return bad("OpenJitter", c.OpenJitter, "out of range [0,1)")
	case c.HalfOpenProbes < 0 || c.HalfOpenProbes > maxProbes:
		return bad("HalfOpenProbes", c.HalfOpenProbes, fmt.Sprintf("out of range [1,%d]", maxProbes))
	case c.HalfOpenSuccesses < 0 || c.HalfOpenSuccesses > maxProbes:
		return bad("HalfOpenSuccesses", c.HalfOpenSuccesses, fmt.Sprintf("out of range [1,%d]", maxProbes))
	}
	return nil
}

// MarshalJSON encodes c with its durations as Go duration strings.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		SlowCallThreshold jsonx.Duration `json:"slowCallThreshold,omitempty"`
		TimeWindow        jsonx.Duration `json:"timeWindow,omitempty"`
		OpenDuration      jsonx.Duration `json:"openDuration,omitempty"`
		MaxOpenDuration   jsonx.Duration `json:"maxOpenDuration,omitempty"`
	}{plain(c), jsonx.Duration(c.SlowCallThreshold), jsonx.Duration(c.TimeWindow),
		jsonx.Duration(c.OpenDuration), jsonx.Duration(c.MaxOpenDuration)})
}

// UnmarshalJSON decodes c, accepting durations as Go duration strings
// ("250ms") or integer nanoseconds; New validates the values.
//
// A key that matches no field, such as a misspelt "failureRte", is always
// an error naming it (`breaker: config: unknown field "failureRte"`), even
// when the caller's json.Decoder allows unknown fields: a typo in an
// operator's file must not silently leave a field at its default. Keys
// match as encoding/json matches them, ignoring case ("FailureRate" is
// "failureRate"); Classify and OnStateChange have no key.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		SlowCallThreshold *jsonx.Duration `json:"slowCallThreshold,omitempty"`
		TimeWindow        *jsonx.Duration `json:"timeWindow,omitempty"`
		OpenDuration      *jsonx.Duration `json:"openDuration,omitempty"`
		MaxOpenDuration   *jsonx.Duration `json:"maxOpenDuration,omitempty"`
	}{
		plain:             (*plain)(c),
		SlowCallThreshold: (*jsonx.Duration)(&c.SlowCallThreshold),
		TimeWindow:        (*jsonx.Duration)(&c.TimeWindow),
		OpenDuration:      (*jsonx.Duration)(&c.OpenDuration),
		MaxOpenDuration:   (*jsonx.Duration)(&c.MaxOpenDuration),
	}
	return jsonx.DecodeConfig("breaker: config", b, &aux)
}
