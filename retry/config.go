package retry

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// Jitter is how a computed exponential delay is randomised, so that callers
// that failed together do not retry together.
type Jitter string

// The jitter modes. With base the exponential delay of a retry:
const (
	// FullJitter waits a uniformly random time in [0, base]: the default,
	// and the best at spreading a crowd of callers.
	FullJitter Jitter = "full"
	// EqualJitter waits base/2 plus a random time in [0, base/2].
	EqualJitter Jitter = "equal"
	// DecorrelatedJitter is AWS's "decorrelated jitter": it ignores base
	// and Multiplier, and draws every delay, the first included, as
	//
	//	delay = min(MaxDelay, uniform random in [Delay, 3 × previous])
	//
	// where previous is the delay it drew before, and Delay for the first
	// retry (so the first delay is in [Delay, 3 × Delay]). A server's hint
	// that lengthens a wait does not change previous.
	DecorrelatedJitter Jitter = "decorrelated"
	// NoJitter waits exactly base.
	NoJitter Jitter = "none"
)

// BackOff is a stateful source of delays, the interface of
// github.com/cenkalti/backoff/v4's BackOff: any of its policies can be used
// through [Config.BackOff] without this package importing it. NextBackOff
// returning a negative duration (backoff.Stop) ends the retries.
type BackOff interface {
	NextBackOff() time.Duration
	Reset()
}

// Config configures a [Retry]. The zero value is valid: 3 attempts in all,
// exponential delays from 100ms doubling up to 10s with full jitter, server
// hints honoured up to 5 minutes, and a retry budget of 10% of requests (plus
// a floor of 1 retry per 5s window, while the caller mostly succeeds) per
// Retry.
//
// Config is JSON-taggable so operators can keep it in a file; durations are
// written as Go duration strings ("250ms") or integer nanoseconds. A key
// that names no field, here or in the budget, is an error (see
// [Config.UnmarshalJSON]), and Multiplier must be finite, in Go as in JSON.
type Config struct {
	// MaxAttempts is the number of attempts, including the first: 1 means
	// no retry. Default 3; at most 1000.
	MaxAttempts int `json:"maxAttempts,omitempty"`

	// MaxElapsed, if set, bounds the time from the start of the first
	// attempt: no retry starts after it, and none is begun whose delay would
	// pass it. Setting it costs a clock read on every call.
	MaxElapsed time.Duration `json:"maxElapsed,omitempty"`

	// Delay is the delay before the first retry, before jitter; default
	// 100ms. Each further retry multiplies it by Multiplier, up to MaxDelay.
	Delay time.Duration `json:"delay,omitempty"`

	// MaxDelay caps the delays; default 10s, and at least Delay.
	MaxDelay time.Duration `json:"maxDelay,omitempty"`

	// Multiplier grows the delay from one retry to the next; default 2.
	// 1 gives constant delays. It may not be below 1 nor above 100.
	Multiplier float64 `json:"multiplier,omitempty"`

	// Jitter randomises each delay; default FullJitter.
	Jitter Jitter `json:"jitter,omitempty"`

	// DelayFunc, if set, replaces the exponential delays: it returns the
	// delay before retry n (1 for the first retry) after err. A negative
	// delay ends the retries.
	DelayFunc func(n int, err error) time.Duration `json:"-"`

	// BackOff, if set, replaces the exponential delays with a BackOff made
	// for each call (a BackOff is stateful), such as a cenkalti/backoff/v4
	// policy: func() retry.BackOff { return backoff.NewExponentialBackOff() }.
	// At most one of DelayFunc and BackOff may be set.
	BackOff func() BackOff `json:"-"`

	// MaxHint caps how long a server's retry-after hint (see
	// seawall.RetryAfter) can make a retry wait; default 5 minutes. A retry
	// waits at least the hint, capped so (an absurd hint of a year waits
	// MaxHint), and a hint that would outlast what is left before the
	// context's deadline ends the retries at once.
	MaxHint time.Duration `json:"maxHint,omitempty"`

	// AttemptTimeout, if set, gives each attempt a context with this
	// timeout; an attempt that runs out of it is retried (the caller's own
	// deadline still ends everything).
	AttemptTimeout time.Duration `json:"attemptTimeout,omitempty"`

	// Retryable decides whether an error is worth retrying; default
	// [DefaultRetryable]. Whatever it says, errors marked seawall.Permanent
	// are never retried, and nothing is retried once the caller's context
	// has ended.
	Retryable func(err error) bool `json:"-"`

	// OnRetry, if set, is called before each retry's wait with the number of
	// the attempt that failed (1 for the first), its error and the delay
	// that follows. It is called outside any lock, on the caller's
	// goroutine.
	OnRetry func(attempt int, err error, delay time.Duration) `json:"-"`

	// Budget configures the retry budget that bounds retries to a share of
	// requests. Each Retry gets its own budget; to share one among several
	// Retry values (one per endpoint of a client, say), set SharedBudget.
	Budget BudgetConfig `json:"budget,omitzero"`

	// SharedBudget, if set, is used instead of a budget made from Budget.
	SharedBudget *Budget `json:"-"`
}

const maxAttemptsLimit = 1000

func (c Config) withDefaults() (Config, error) {
	if err := c.validate(); err != nil {
		return c, err
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.Delay == 0 {
		c.Delay = 100 * time.Millisecond
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = max(10*time.Second, c.Delay)
	}
	if c.MaxDelay < c.Delay {
		return c, fmt.Errorf("retry: MaxDelay %v is below Delay %v", c.MaxDelay, c.Delay)
	}
	if c.Multiplier == 0 {
		c.Multiplier = 2
	}
	if c.Jitter == "" {
		c.Jitter = FullJitter
	}
	if c.MaxHint == 0 {
		c.MaxHint = 5 * time.Minute
	}
	if c.Retryable == nil {
		c.Retryable = DefaultRetryable
	}
	return c, nil
}

func (c *Config) validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("retry: %s %v %s", field, v, want)
	}
	switch {
	case c.MaxAttempts < 0 || c.MaxAttempts > maxAttemptsLimit:
		return bad("MaxAttempts", c.MaxAttempts, fmt.Sprintf("out of range [1,%d]", maxAttemptsLimit))
	case c.MaxElapsed < 0:
		return bad("MaxElapsed", c.MaxElapsed, "is negative")
	case c.Delay < 0:
		return bad("Delay", c.Delay, "is negative")
	case c.MaxDelay < 0:
		return bad("MaxDelay", c.MaxDelay, "is negative")
	case math.IsNaN(c.Multiplier) || c.Multiplier != 0 && (c.Multiplier < 1 || c.Multiplier > 100):
		return bad("Multiplier", c.Multiplier, "out of range [1,100]")
	case c.Jitter != "" && c.Jitter != FullJitter && c.Jitter != EqualJitter && c.Jitter != DecorrelatedJitter && c.Jitter != NoJitter:
		return fmt.Errorf("retry: Jitter %q unknown; want \"full\", \"equal\", \"decorrelated\" or \"none\"", c.Jitter)
	case c.DelayFunc != nil && c.BackOff != nil:
		return fmt.Errorf("retry: DelayFunc and BackOff both set; choose one")
	case c.MaxHint < 0:
		return bad("MaxHint", c.MaxHint, "is negative")
	case c.AttemptTimeout < 0:
		return bad("AttemptTimeout", c.AttemptTimeout, "is negative")
	}
	return nil
}

// MarshalJSON encodes c with its durations as Go duration strings.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		MaxElapsed     jsonx.Duration `json:"maxElapsed,omitempty"`
		Delay          jsonx.Duration `json:"delay,omitempty"`
		MaxDelay       jsonx.Duration `json:"maxDelay,omitempty"`
		MaxHint        jsonx.Duration `json:"maxHint,omitempty"`
		AttemptTimeout jsonx.Duration `json:"attemptTimeout,omitempty"`
	}{plain(c), jsonx.Duration(c.MaxElapsed), jsonx.Duration(c.Delay), jsonx.Duration(c.MaxDelay),
		jsonx.Duration(c.MaxHint), jsonx.Duration(c.AttemptTimeout)})
}

// UnmarshalJSON decodes c, accepting durations as Go duration strings
// ("250ms") or integer nanoseconds; New validates the values.
//
// A key that matches no field, such as a misspelt "maxAttemps", is always
// an error naming it (`retry: config: unknown field "maxAttemps"`), even
// when the caller's json.Decoder allows unknown fields: a typo in an
// operator's file must not silently leave a field at its default. A key
// unknown to the budget is named by its path from the top
// (`retry: config: unknown field "budget.windw"`). Keys match as
// encoding/json matches them, ignoring case ("MaxAttempts" is
// "maxAttempts"); the function fields and SharedBudget have no key.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		MaxElapsed     *jsonx.Duration `json:"maxElapsed,omitempty"`
		Delay          *jsonx.Duration `json:"delay,omitempty"`
		MaxDelay       *jsonx.Duration `json:"maxDelay,omitempty"`
		MaxHint        *jsonx.Duration `json:"maxHint,omitempty"`
		AttemptTimeout *jsonx.Duration `json:"attemptTimeout,omitempty"`
		Budget         *budgetJSON     `json:"budget"`
	}{
		plain:          (*plain)(c),
		MaxElapsed:     (*jsonx.Duration)(&c.MaxElapsed),
		Delay:          (*jsonx.Duration)(&c.Delay),
		MaxDelay:       (*jsonx.Duration)(&c.MaxDelay),
		MaxHint:        (*jsonx.Duration)(&c.MaxHint),
		AttemptTimeout: (*jsonx.Duration)(&c.AttemptTimeout),
		Budget:         (*budgetJSON)(&c.Budget),
	}
	return jsonx.DecodeConfig("retry: config", b, &aux)
}

// budgetJSON decodes Config.Budget, naming a key unknown to the budget by
// its path from the top of the file ("budget.windw").
type budgetJSON BudgetConfig

func (b *budgetJSON) UnmarshalJSON(data []byte) error {
	return jsonx.InField("budget", (*BudgetConfig)(b).UnmarshalJSON(data))
}
