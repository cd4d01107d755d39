package preset

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/jsonx"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

// Config configures the standard pipeline of a client (see the package
// doc): rate limiter → total timeout → retry with budget → breaker →
// attempt timeout. The zero value is valid and means the defaults of the
// package doc's table; each field left zero takes its default, field by
// field, nested fields included.
//
// Config is JSON-taggable so operators can keep it in a file (see [Load],
// which reads JSON or YAML); durations are written as Go duration strings
// ("250ms") or integer nanoseconds. A key that names no field, at any
// depth, is an error naming its path from the top of the file.
//
// [Config.Validate] checks each stage's settings and the settings of
// different stages against one another; the builders call it.
type Config struct {
	// RateLimit, if set, is a client-side token bucket in front of every
	// call: a call waits for a token, within its total timeout (a call
	// whose token would come after its deadline is refused at once with an
	// error matching ratelimit.ErrLimited and carrying the wait as a
	// retry-after hint). It limits calls, not attempts: retries take no
	// token. nil (the default) means no limiter: a rate limit must be sized
	// for the dependency, so the preset has none of its own.
	RateLimit *ratelimit.Config `json:"rateLimit,omitempty"`

	// Timeout is the total timeout of a call: from the start of the call
	// (before waiting for a rate-limit token) to the end of reading the
	// response (an HTTP response's body is closed, a gRPC stream ends),
	// every attempt and every wait between attempts included. The caller's
	// own deadline, if earlier, still rules. Default 30s.
	Timeout time.Duration `json:"timeout"`

	// Retry configures the retries, and their budget, which are made of
	// each call: MaxAttempts (including the first; 1 turns retries off;
	// default 4, that is 3 retries), Delay (default 2s, exponential from
	// there with full jitter), and the rest as retry.Config documents.
	// Its AttemptTimeout must be left zero: the preset's attempt timeout
	// is [Config.AttemptTimeout].
	Retry retry.Config `json:"retry,omitzero"`

	// Breaker configures the circuit breakers, one per host (HTTP) or per
	// method (gRPC), which every attempt asks first. Defaults: a
	// FailureRate of 0.1 if no trip rule is set; a TimeWindow of 30s if a
	// rate rule is on and no window is set; a MinimumCalls of 100 for a
	// time window (min(100, CountWindow) for a count window); an
	// OpenDuration of 5s. Other fields take breaker.Config's defaults.
	Breaker breaker.Config `json:"breaker,omitzero"`

	// DisableBreaker, if true, removes the breakers from the pipeline; the
	// Breaker settings are then ignored, neither validated nor checked
	// against the other settings.
	DisableBreaker bool `json:"disableBreaker,omitempty"`

	// AttemptTimeout is the timeout of each attempt, from sending the
	// request to the end of reading its response; an attempt that runs out
	// of it is retried. Default 10s. It may not exceed Timeout; set it to
	// Timeout for no attempt timeout of its own.
	AttemptTimeout time.Duration `json:"attemptTimeout"`
}

// The preset's defaults, which the package doc's table lists.
const (
	defaultTimeout        = 30 * time.Second
	defaultAttemptTimeout = 10 * time.Second
	defaultMaxAttempts    = 4
	defaultRetryDelay     = 2 * time.Second
	defaultFailureRate    = 0.1
	defaultBreakerWindow  = 30 * time.Second
	defaultMinimumCalls   = 100
	defaultOpenDuration   = 5 * time.Second
)

// retry.Config's defaults, which the check of the retries' delays needs.
const (
	retryDefaultAttempts   = 3
	retryDefaultDelay      = 100 * time.Millisecond
	retryDefaultMultiplier = 2
	retryDefaultMaxDelay   = 10 * time.Second // or Delay, if longer
)

// maxDelaysShown is how many delays an error spells out.
const maxDelaysShown = 6

// WithDefaults returns c with the preset's defaults (see the package doc)
// in place of its zero fields. The fields whose defaults are those of
// retry.Config, breaker.Config and ratelimit.Config are left zero, for
// those packages to apply. It does not validate c.
func (c Config) WithDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = defaultAttemptTimeout
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = defaultMaxAttempts
	}
	if c.Retry.Delay == 0 {
		c.Retry.Delay = defaultRetryDelay
	}
	if c.RateLimit != nil {
		rl := *c.RateLimit // never alias the caller's
		c.RateLimit = &rl
	}
	b := &c.Breaker
	if b.ConsecutiveFailures == 0 && b.FailureRate == 0 && b.SlowCallRate == 0 {
		b.FailureRate = defaultFailureRate
	}
	if rateRule(b) {
		if b.CountWindow == 0 && b.TimeWindow == 0 {
			b.TimeWindow = defaultBreakerWindow
		}
		if b.MinimumCalls == 0 {
			b.MinimumCalls = defaultMinimumCalls
			if b.CountWindow > 0 {
				b.MinimumCalls = min(defaultMinimumCalls, b.CountWindow)
			}
		}
	}
	if b.OpenDuration == 0 {
		b.OpenDuration = defaultOpenDuration
	}
	return c
}

// rateRule reports whether a rate rule of b is on.
func rateRule(b *breaker.Config) bool { return b.FailureRate > 0 || b.SlowCallRate > 0 }

// Validate returns nil if c, with its defaults, is a pipeline that can do
// what it says, or an error describing every problem found. Each problem
// names the setting as a file spells it and its value, marked "(default)"
// when it is the preset's default.
//
// First each stage's own settings are checked, as ratelimit.New, retry.New
// and breaker.New check them (`preset: retry: MaxAttempts -1 out of range
// [1,1000]`), as well as the preset's own: timeout and attemptTimeout must
// not be negative, and retry.attemptTimeout must be left zero. If they are
// valid, the stages are checked against one another:
//
//   - attemptTimeout may not exceed timeout: no attempt could use it.
//   - A breaker's time window with a rate rule must be at least twice
//     attemptTimeout, so that an attempt that times out is recorded in a
//     window that still holds the calls made while it ran. (A count
//     window holds calls, however long they take: no rule applies.)
//   - The delays of the retries, before jitter, must add up to less than
//     timeout (or retry.maxElapsed, if shorter): otherwise the last
//     retries could never start, even against a dependency that answers
//     at once. The attempts' own time is not counted: it is not known,
//     and attemptTimeout only bounds it. Delays before jitter are Delay ×
//     Multiplier^(n-1) for retry n, capped at MaxDelay; for
//     decorrelated jitter, which has no such base, Delay each (its
//     least). With a DelayFunc or a BackOff the delays are unknown and
//     the rule does not apply.
//   - With a finite rate limit and a breaker with a rate rule over a
//     time window, the calls that the limiter admits in one window,
//     rateLimit.rate × breaker.timeWindow, must reach
//     breaker.minimumCalls: otherwise the breaker could never trip, and
//     the protection it stands for would be silently missing. The bucket's
//     burst is not counted (a breaker that could trip only on a burst after
//     a quiet period is missing in steady traffic), nor are retries (the
//     budget keeps them to a small share of calls), and the limiter is
//     shared by all the breakers (all hosts, all methods), so the bound
//     is generous.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolve returns c with its defaults, validated.
func (c Config) resolve() (Config, error) {
	d := c.WithDefaults()
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("preset: timeout %v is negative", c.Timeout))
	}
	if c.AttemptTimeout < 0 {
		errs = append(errs, fmt.Errorf("preset: attemptTimeout %v is negative", c.AttemptTimeout))
	}
	if d.RateLimit != nil {
		if _, err := ratelimit.New(*d.RateLimit); err != nil {
			errs = append(errs, stageError("rateLimit", "ratelimit: ", err))
		}
	}
	if c.Retry.AttemptTimeout != 0 {
		errs = append(errs, fmt.Errorf("preset: retry.attemptTimeout %v must be left zero: the preset's attempt timeout is attemptTimeout", c.Retry.AttemptTimeout))
	} else if _, err := retry.New(d.Retry); err != nil {
		errs = append(errs, stageError("retry", "retry: ", err))
	}
	if !d.DisableBreaker {
		if _, err := breaker.NewGroup(d.Breaker, 0); err != nil {
			errs = append(errs, stageError("breaker", "breaker: ", err))
		}
	}
	if len(errs) > 0 {
		return d, errors.Join(errs...)
	}
	errs = append(errs, c.crossCheck(d)...)
	return d, errors.Join(errs...)
}

// crossCheck checks the stages of d, c with its defaults, against one
// another.
func (c Config) crossCheck(d Config) []error {
	var errs []error
	timeout := setting("timeout", d.Timeout, c.Timeout == 0)
	attempt := setting("attemptTimeout", d.AttemptTimeout, c.AttemptTimeout == 0)
	if d.AttemptTimeout > d.Timeout {
		errs = append(errs, fmt.Errorf("preset: %s exceeds %s: no attempt could last that long; lower attemptTimeout or raise timeout", attempt, timeout))
	}
	b := &d.Breaker
	if !d.DisableBreaker && rateRule(b) && b.TimeWindow > 0 {
		window := setting("breaker.timeWindow", b.TimeWindow, c.Breaker.TimeWindow == 0)
		if b.TimeWindow/2 < d.AttemptTimeout {
			errs = append(errs, fmt.Errorf("preset: %s is shorter than twice %s (%v): an attempt that times out would be counted in a window without the calls made while it ran; lengthen breaker.timeWindow or lower attemptTimeout",
				window, attempt, 2*d.AttemptTimeout))
		}
		if rl := d.RateLimit; rl != nil && !math.IsInf(rl.Rate, 1) {
			if reach := math.Floor(rl.Rate * b.TimeWindow.Seconds()); reach < float64(b.MinimumCalls) {
				errs = append(errs, fmt.Errorf("preset: %s can never be reached: rateLimit.rate %v/s admits at most %.0f calls in %s, so the breaker could never trip; lower breaker.minimumCalls to %.0f or less, or lengthen breaker.timeWindow to %s or more",
					setting("breaker.minimumCalls", b.MinimumCalls, c.Breaker.MinimumCalls == 0), rl.Rate, reach, window, reach,
					windowFor(b.MinimumCalls, rl.Rate)))
			}
		}
	}
	if err := c.checkDelays(d); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkDelays checks that the nominal delays of d's retries fit in its
// timeout (or its retry's MaxElapsed).
func (c Config) checkDelays(d Config) error {
	r := &d.Retry
	if r.MaxAttempts <= 1 || r.DelayFunc != nil || r.BackOff != nil {
		return nil
	}
	horizon, name, bound := d.Timeout, "timeout", setting("timeout", d.Timeout, c.Timeout == 0)
	if r.MaxElapsed > 0 && r.MaxElapsed < horizon {
		horizon, name, bound = r.MaxElapsed, "retry.maxElapsed", setting("retry.maxElapsed", r.MaxElapsed, false)
	}
	delays, sum := nominalDelays(*r)
	if sum < horizon {
		return nil
	}
	var b strings.Builder
	for i, dl := range delays {
		if i == maxDelaysShown {
			b.WriteString("+…")
			break
		}
		if i > 0 {
			b.WriteByte('+')
		}
		b.WriteString(dl.String())
	}
	return fmt.Errorf("preset: %s and %s make %d retries whose delays before jitter add up to %v (%s), not less than %s: the last retries could never start; lower retry.maxAttempts, retry.delay or retry.maxDelay, or raise %s",
		setting("retry.maxAttempts", r.MaxAttempts, c.Retry.MaxAttempts == 0), setting("retry.delay", r.Delay, c.Retry.Delay == 0),
		len(delays), sum, b.String(), bound, name)
}

// nominalDelays returns the delays before jitter of the retries of cfg
// (MaxAttempts-1 of them, with retry.Config's defaults for the zero
// fields) and their sum, saturated at the largest time.Duration: Delay ×
// Multiplier^(n-1) before retry n, capped at MaxDelay, as retry computes
// the base that its jitter draws from; for decorrelated jitter, which has
// no such base, Delay before each retry, its least. With a DelayFunc or a
// BackOff the delays are not known: it returns nil and 0.
func nominalDelays(cfg retry.Config) ([]time.Duration, time.Duration) {
	if cfg.DelayFunc != nil || cfg.BackOff != nil {
		return nil, 0
	}
	n := cfg.MaxAttempts
	if n == 0 {
		n = retryDefaultAttempts
	}
	delay := cfg.Delay
	if delay == 0 {
		delay = retryDefaultDelay
	}
	mult := cfg.Multiplier
	if mult == 0 {
		mult = retryDefaultMultiplier
	}
	maxDelay := cfg.MaxDelay
	if maxDelay == 0 {
		maxDelay = max(retryDefaultMaxDelay, delay)
	}
	if cfg.Jitter == retry.DecorrelatedJitter {
		mult = 1
		maxDelay = max(maxDelay, delay)
	}
	var (
		delays []time.Duration
		sum    time.Duration
	)
	for i := 1; i < n; i++ {
		d := maxDelay
		if f := float64(delay) * math.Pow(mult, float64(i-1)); f < float64(maxDelay) {
			d = time.Duration(f)
		}
		delays = append(delays, d)
		if sum > math.MaxInt64-d {
			sum = math.MaxInt64
		} else {
			sum += d
		}
	}
	return delays, sum
}

// windowFor returns the shortest window, in whole milliseconds, in which
// calls at rate per second number at least n.
func windowFor(n int, rate float64) string {
	ms := math.Ceil(float64(n) / rate * 1000)
	if ms >= math.MaxInt64/float64(time.Millisecond) {
		return fmt.Sprintf("%.3gh", ms/float64(time.Hour/time.Millisecond))
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// setting formats a setting's name and value, marked as a default.
func setting(name string, v any, dflt bool) string {
	if dflt {
		return fmt.Sprintf("%s %v (default)", name, v)
	}
	return fmt.Sprintf("%s %v", name, v)
}

// stageErr is the error of a stage's own validation, prefixed with the
// stage's key in place of its package's prefix ("retry: MaxAttempts -1 …"
// becomes "preset: retry: MaxAttempts -1 …"). The package's error is kept
// for errors.Is and errors.As.
type stageErr struct {
	msg string
	err error
}

func (e *stageErr) Error() string { return e.msg }
func (e *stageErr) Unwrap() error { return e.err }

func stageError(key, pkgPrefix string, err error) error {
	return &stageErr{msg: "preset: " + key + ": " + strings.TrimPrefix(err.Error(), pkgPrefix), err: err}
}

// MarshalJSON encodes c with its durations as Go duration strings.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Timeout        jsonx.Duration `json:"timeout"`
		AttemptTimeout jsonx.Duration `json:"attemptTimeout"`
	}{plain(c), jsonx.Duration(c.Timeout), jsonx.Duration(c.AttemptTimeout)})
}

// UnmarshalJSON decodes c from JSON, accepting durations as Go duration
// strings ("250ms") or integer nanoseconds; it does not validate c (see
// [Config.Validate]; [Load] does both).
//
// A key that matches no field, at any depth, is an error naming it by its
// path from the top (`preset: config: unknown field
// "retry.budget.windw"`), even when the caller's json.Decoder allows
// unknown fields. Keys match as encoding/json matches them, ignoring case.
// "rateLimit": null means no rate limiter.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		RateLimit      rateLimitJSON   `json:"rateLimit"`
		Timeout        *jsonx.Duration `json:"timeout"`
		Retry          *retryJSON      `json:"retry"`
		Breaker        *breakerJSON    `json:"breaker"`
		AttemptTimeout *jsonx.Duration `json:"attemptTimeout"`
	}{
		plain:          (*plain)(c),
		RateLimit:      rateLimitJSON{&c.RateLimit},
		Timeout:        (*jsonx.Duration)(&c.Timeout),
		Retry:          (*retryJSON)(&c.Retry),
		Breaker:        (*breakerJSON)(&c.Breaker),
		AttemptTimeout: (*jsonx.Duration)(&c.AttemptTimeout),
	}
	return jsonx.DecodeConfig("preset: config", b, &aux)
}

// rateLimitJSON decodes Config.RateLimit, naming a key unknown to it by its
// path from the top of the file ("rateLimit.brust").
type rateLimitJSON struct{ p **ratelimit.Config }

func (r *rateLimitJSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r.p = nil
		return nil
	}
	var cfg ratelimit.Config
	if *r.p != nil {
		cfg = **r.p
	}
	if err := cfg.UnmarshalJSON(b); err != nil {
		return jsonx.InField("rateLimit", err)
	}
	*r.p = &cfg
	return nil
}

// retryJSON decodes Config.Retry, naming a key unknown to it by its path
// from the top of the file ("retry.budget.windw").
type retryJSON retry.Config

func (r *retryJSON) UnmarshalJSON(b []byte) error {
	return jsonx.InField("retry", (*retry.Config)(r).UnmarshalJSON(b))
}

// breakerJSON decodes Config.Breaker, naming a key unknown to it by its
// path from the top of the file ("breaker.timeWindw").
type breakerJSON breaker.Config

func (c *breakerJSON) UnmarshalJSON(b []byte) error {
	return jsonx.InField("breaker", (*breaker.Config)(c).UnmarshalJSON(b))
}
