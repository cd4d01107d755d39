package ratelimit

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/internal/jsonx"
)

// Config configures a [Limiter]: a token bucket of Burst tokens, initially
// full, refilled at Rate tokens per second.
//
// Rate has no default: a limiter with no rate configured is almost surely a
// mistake, so New rejects the zero Config. Write math.Inf(1) (JSON "inf") for
// no limit.
//
// Config is JSON-taggable so operators can keep it in a file:
// {"rate": 100, "burst": 20}, or {"rate": "inf"} for no limit. A key that
// names no field is an error (see [Config.UnmarshalJSON]).
type Config struct {
	// Rate is the number of events allowed per second on average, in
	// (0, 1e9], or +Inf for no limit: every event is allowed and the
	// limiter reads no clock. The time between two events, 1/Rate, is kept
	// rounded to the nanosecond, so rates above about 1e6/s are
	// approximate (off by at most 0.5 ns per event).
	//
	// No limit is one value, accepted the same way everywhere: math.Inf(1)
	// in Go (by New, NewKeyed and SetRate), the string "inf" in JSON (in
	// any case, with or without a "+"; MarshalJSON writes "inf"). Nothing
	// else means no limit: 0, a negative rate, -Inf and NaN are refused by
	// New and SetRate with an error naming Rate, as is a rate above 1e9
	// (math.MaxFloat64, x/time/rate's Inf, included); JSON has no number
	// for infinity, and no other string is a rate. Rate is the only float of
	// seawall's configs where infinity has a meaning: every other must be
	// finite.
	Rate float64 `json:"rate"`

	// Burst is the size of the bucket: the number of events allowed at once
	// after a quiet period, and the largest n an AllowN, Try, Reserve or
	// Wait may ask for. It is at least 1; zero means the default,
	// max(1, ceil(Rate)) (one second's worth of events), or 1 if Rate is
	// infinite. Refilling an empty bucket, Burst/Rate seconds, may take at
	// most 10 years (87600h).
	Burst int `json:"burst,omitempty"`

	// Clock, if set, is the clock the limiter reads instead of the
	// runtime's: a read is one atomic load, where time.Since costs about
	// 35 ns on some virtual machines. The user creates the clock, may share
	// it among policies, and stops it (see package clock); after Stop the
	// limiter reads the runtime's clock again. Nil, the default, reads the
	// runtime's monotonic clock. A Keyed reads it for every key's bucket,
	// with the same bounds per key. Methods that take the time as an
	// argument (AllowN, ReserveN, DelayFrom, CancelAt) read no clock either
	// way.
	//
	// The price is accuracy. A coarse clock's reading lags real time by L,
	// under one tick when its goroutine wakes on time (see clock.Coarse),
	// so the limiter sees each token up to L late:
	//
	//   - over any interval of length d it allows at most
	//     Rate × (d + L) + Burst events, where the exact clock allows
	//     Rate × d + Burst: up to Rate × L more, when a reading jumps a tick
	//     and that tick's tokens come at once;
	//   - a caller that keeps the bucket empty from the limiter's creation
	//     on is granted up to ⌈Rate × L⌉ fewer events than with the exact
	//     clock, never more;
	//   - if Rate × L exceeds Burst, a jump brings more tokens than the
	//     bucket holds and the surplus is lost: the limiter then allows
	//     about Burst events a tick, below Rate. Pick the tick so that
	//     Rate × tick is small next to Burst (the default Burst, a second's
	//     worth, fits any tick).
	//
	// A refusal reads the clock again, in case the goroutine stalled after
	// the first reading (see Limiter.Allow); with a coarse clock the second
	// reading is usually the first, and refuses as well, which is right: no
	// token came between them as far as the clock can tell.
	//
	// Clock is not part of the JSON form (a clock is a running object, not
	// a setting), and Keyed does not take one yet: NewKeyed refuses it.
	Clock *clock.Coarse `json:"-"`
}

// Limits on configuration values, beyond which New returns an error.
const (
	maxRate = 1e9 // one event per nanosecond, the clock's resolution
	// maxRefill bounds the time to refill an empty bucket (Burst/Rate), so
	// that times computed from a bucket fit an int64 of nanoseconds with
	// room to spare.
	maxRefill = 10 * 365 * 24 * time.Hour
)

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	if err := c.validate(); err != nil {
		return c, err
	}
	if c.Burst == 0 {
		c.Burst = defaultBurst(c.Rate)
	}
	return c, nil
}

// defaultBurst is the Burst of a Config that leaves it zero: one second's
// worth of events, at least 1.
func defaultBurst(rate float64) int {
	if math.IsInf(rate, 1) {
		return 1
	}
	return int(max(1, math.Ceil(rate)))
}

func (c *Config) validate() error {
	if err := validRate(c.Rate); err != nil {
		return err
	}
	if c.Burst < 0 {
		return fmt.Errorf("ratelimit: Burst %d is negative", c.Burst)
	}
	burst := c.Burst
	if burst == 0 {
		burst = defaultBurst(c.Rate)
	}
	return validRefill(c.Rate, burst)
}

func validRate(r float64) error {
	if math.IsInf(r, 1) {
		return nil
	}
	if math.IsNaN(r) || r <= 0 || r > maxRate {
		return fmt.Errorf("ratelimit: Rate %v out of range (0,%g] (or +Inf, JSON \"inf\", for no limit)", r, float64(maxRate))
	}
	return nil
}

// validRefill checks that an empty bucket of burst tokens refills at rate
// within maxRefill.
func validRefill(rate float64, burst int) error {
	if math.IsInf(rate, 1) {
		return nil
	}
	if refill := float64(burst) / rate * float64(time.Second); refill > float64(maxRefill) {
		return fmt.Errorf("ratelimit: Burst %d at Rate %v takes %v to refill, above the limit of %v",
			burst, rate, fmtRefill(refill), maxRefill)
	}
	return nil
}

func fmtRefill(ns float64) string {
	if ns >= math.MaxInt64 {
		return fmt.Sprintf("%.3gh", ns/float64(time.Hour))
	}
	return time.Duration(ns).String()
}

// jsonRate is a rate in JSON: a number, or the string "inf" (in any case,
// with or without a "+") for no limit. See Config.Rate.
type jsonRate float64

func (r jsonRate) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(r), 1) {
		return []byte(`"inf"`), nil
	}
	return json.Marshal(float64(r))
}

func (r *jsonRate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does for values it cannot set to null
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch strings.ToLower(s) {
		case "inf", "+inf":
			*r = jsonRate(math.Inf(1))
			return nil
		}
		return fmt.Errorf("invalid rate %q: want a number or \"inf\"", s)
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("invalid rate %s: want a number or \"inf\"", b)
	}
	*r = jsonRate(f)
	return nil
}

// MarshalJSON encodes c, with an infinite Rate as "inf".
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Rate  jsonRate `json:"rate"`
		Burst int      `json:"burst,omitempty"`
	}{jsonRate(c.Rate), c.Burst})
}

// UnmarshalJSON decodes c, accepting Rate as a number or the string "inf";
// New validates the values.
//
// A key that matches no field, such as a misspelt "brust", is always an
// error naming it (`ratelimit: config: unknown field "brust"`), even when
// the caller's json.Decoder allows unknown fields: a typo in an operator's
// file must not silently leave a field at its default. Keys match as
// encoding/json matches them, ignoring case ("Rate" is "rate").
func (c *Config) UnmarshalJSON(b []byte) error {
	aux := struct {
		Rate  *jsonRate `json:"rate"`
		Burst *int      `json:"burst"`
	}{(*jsonRate)(&c.Rate), &c.Burst}
	return jsonx.DecodeConfig("ratelimit: config", b, &aux)
}

// KeyedConfig configures a [Keyed] limiter: one bucket per key, each
// configured by the embedded Config, and at most MaxKeys keys.
//
// It is JSON-taggable like Config: {"rate": 10, "burst": 5, "maxKeys": 100000},
// and a key that names no field is an error (see [KeyedConfig.UnmarshalJSON]).
type KeyedConfig struct {
	Config

	// MaxKeys bounds the number of keys whose buckets are remembered, from
	// 1 to 1<<24; default 10000. See [Keyed] for what happens beyond it.
	MaxKeys int `json:"maxKeys,omitempty"`
}

const (
	defaultMaxKeys = 10_000
	maxMaxKeys     = 1 << 24
)

func (c KeyedConfig) withDefaults() (KeyedConfig, error) {
	cfg, err := c.Config.withDefaults()
	if err != nil {
		return c, err
	}
	c.Config = cfg
	if c.MaxKeys < 0 || c.MaxKeys > maxMaxKeys {
		return c, fmt.Errorf("ratelimit: MaxKeys %d out of range [1,%d]", c.MaxKeys, maxMaxKeys)
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = defaultMaxKeys
	}
	return c, nil
}

// MarshalJSON encodes c, with an infinite Rate as "inf".
func (c KeyedConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Rate    jsonRate `json:"rate"`
		Burst   int      `json:"burst,omitempty"`
		MaxKeys int      `json:"maxKeys,omitempty"`
	}{jsonRate(c.Rate), c.Burst, c.MaxKeys})
}

// UnmarshalJSON decodes c, accepting Rate as a number or the string "inf";
// NewKeyed validates the values. As for [Config.UnmarshalJSON], a key that
// matches no field is always an error naming it
// (`ratelimit: keyed config: unknown field "maxKey"`); keys match ignoring
// case.
func (c *KeyedConfig) UnmarshalJSON(b []byte) error {
	aux := struct {
		Rate    *jsonRate `json:"rate"`
		Burst   *int      `json:"burst"`
		MaxKeys *int      `json:"maxKeys"`
	}{(*jsonRate)(&c.Rate), &c.Burst, &c.MaxKeys}
	return jsonx.DecodeConfig("ratelimit: keyed config", b, &aux)
}
