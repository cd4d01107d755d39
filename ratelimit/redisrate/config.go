package redisrate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/seawall-go/seawall/breaker"
)

// Mode is what a limiter does while Redis is unavailable: its breaker is
// open, or a call to Redis failed or timed out. See [Config.Fallback].
type Mode uint8

const (
	// FallbackLocal, the default, decides with a local token bucket holding
	// this instance's share of the limit: Rate/Instances tokens a second and
	// ceil(Burst/Instances) tokens. If every instance falls back together,
	// the fleet still admits about Rate, not Instances × Rate.
	FallbackLocal Mode = iota
	// FailClosed refuses every event while Redis is unavailable, with an
	// error matching [ErrUnavailable]: nothing passes that Redis did not
	// count. Use it when exceeding the limit costs more than an outage.
	FailClosed
	// FailOpen admits every event while Redis is unavailable: no limit at
	// all. Use it when the limit protects nothing that a short burst can
	// hurt.
	FailOpen
)

var modeNames = [...]string{FallbackLocal: "local", FailClosed: "fail-closed", FailOpen: "fail-open"}

// String returns "local", "fail-closed" or "fail-open".
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// MarshalText encodes m as its String.
func (m Mode) MarshalText() ([]byte, error) {
	if int(m) >= len(modeNames) {
		return nil, fmt.Errorf("redisrate: Fallback %v is not a mode", m)
	}
	return []byte(m.String()), nil
}

// UnmarshalText decodes "local", "fail-closed" or "fail-open".
func (m *Mode) UnmarshalText(b []byte) error {
	for i, n := range modeNames {
		if string(b) == n {
			*m = Mode(i)
			return nil
		}
	}
	return fmt.Errorf("redisrate: Fallback %q is not a mode: want \"local\", \"fail-closed\" or \"fail-open\"", b)
}

// Config configures a [Limiter] (one bucket, named by Key) or a [Keyed]
// limiter (one bucket per key given to each call): a token bucket of Burst
// tokens, initially full, refilled at Rate tokens per second, kept in Redis
// and shared by every process that uses the same Redis, Prefix and key.
//
// Rate, Burst and, for FallbackLocal, Instances have no default: a number
// that a fleet shares cannot be guessed, so New rejects the zero Config.
// The other zero fields mean the documented defaults.
//
// Config is JSON-taggable so operators can keep it in a file, durations as
// Go duration strings: {"rate": 1000, "burst": 100, "key": "accounts",
// "instances": 12, "timeout": "5ms", "fallback": "local"}. A key that names
// no field is an error (see [Config.UnmarshalJSON]).
type Config struct {
	// Rate is the number of events allowed per second on average, over all
	// the processes that share the bucket, in (0, 1e6]: the script counts
	// time in microseconds. It has no default; there is no "no limit".
	Rate float64 `json:"rate"`

	// Burst is the size of the bucket: the number of events allowed at once
	// after a quiet period, and the largest n a call may ask for. It is
	// required, at least 1, at most 1e9; refilling an empty bucket,
	// Burst/Rate seconds, may take at most 10 years.
	Burst int `json:"burst"`

	// Prefix starts every Redis key the limiter writes; default
	// "seawall:rl:". It may not contain '{' or '}', which would change the
	// key's hash tag (see the package doc's "Keys"), and is at most
	// MaxKeyLen bytes.
	Prefix string `json:"prefix,omitempty"`

	// Key names the bucket of a [Limiter] made by [New]: 1 to [MaxKeyLen]
	// bytes, any bytes. Limiters in different processes with the same
	// Prefix and Key share one bucket. A [Keyed] limiter takes its keys in
	// each call, and NewKeyed rejects a Config with Key set.
	Key string `json:"key,omitempty"`

	// Timeout bounds every call to Redis (a round trip, or two when Redis
	// has lost the script and the limiter sends it again), in (0, 1s];
	// default 5ms, which a Redis on the same host or LAN answers with
	// plenty of room. A call that does not finish in time counts as a
	// failure of Redis, is decided by Fallback, and is never sent again
	// (see the package doc).
	Timeout time.Duration `json:"timeout,omitempty"`

	// Breaker configures the circuit breaker in front of Redis: while it is
	// open the limiter does not call Redis at all and every decision goes
	// to Fallback, so an outage costs a refused connection or a Timeout
	// only until the breaker trips, not on every call. Its zero fields
	// take redisrate's defaults, tighter than package breaker's: 3
	// consecutive failures trip it (if no trip rule is set), and it stays
	// open 1s (if OpenDuration is 0); then one probe calls Redis, and a
	// successful probe closes it. Refusals by the limit are successes: only
	// Redis errors and timeouts count.
	Breaker breaker.Config `json:"breaker"`

	// Fallback is what the limiter does while Redis is unavailable:
	// FallbackLocal (the default), FailClosed or FailOpen; in JSON
	// "local", "fail-closed" or "fail-open".
	Fallback Mode `json:"fallback,omitempty"`

	// Instances is how many processes share the limit, for FallbackLocal:
	// each gets Rate/Instances and ceil(Burst/Instances) of it while Redis
	// is unavailable. Required (at least 1, at most 1e6) with
	// FallbackLocal, ignored otherwise. Use the number of replicas of the
	// deployment (Kubernetes: the Deployment's spec.replicas, passed in an
	// environment variable, or read from the API), and call SetInstances
	// when it changes (an autoscaler's hook). Too small a number lets more
	// than the limit through during an outage; too large refuses more than
	// needed.
	Instances int `json:"instances,omitempty"`

	// MaxKeys bounds the keys a [Keyed] limiter's local fallback remembers,
	// as ratelimit.KeyedConfig.MaxKeys; default 10000. Redis's own memory
	// is bounded by each key's expiry. A [Limiter] ignores it.
	MaxKeys int `json:"maxKeys,omitempty"`
}

// Limits on configuration values and keys.
const (
	// MaxKeyLen is the longest key accepted, in bytes, for Config.Key,
	// Config.Prefix and the keys given to a [Keyed] limiter: keys often
	// come from requests (a client's address, a tenant's header), and a
	// bound keeps one caller from filling Redis with huge keys.
	MaxKeyLen = 512

	maxRate        = 1e6 // one event per microsecond, the resolution of Redis's TIME
	maxBurst       = 1e9
	maxInstances   = 1e6
	maxTimeout     = time.Second
	maxRefill      = 10 * 365 * 24 * time.Hour
	defaultTimeout = 5 * time.Millisecond
	defaultPrefix  = "seawall:rl:"
	defaultOpen    = time.Second
	defaultTrips   = 3
	defaultMaxKeys = 10_000
)

// withDefaults validates c and returns it with defaults applied. keyed
// says whether it configures a Keyed limiter (no Key) or a Limiter.
func (c Config) withDefaults(keyed bool) (Config, error) {
	if err := c.validate(keyed); err != nil {
		return c, err
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = defaultMaxKeys
	}
	b := &c.Breaker
	if b.ConsecutiveFailures == 0 && b.FailureRate == 0 && b.SlowCallRate == 0 {
		b.ConsecutiveFailures = defaultTrips
	}
	if b.OpenDuration == 0 {
		b.OpenDuration = defaultOpen
	}
	return c, nil
}

func (c *Config) validate(keyed bool) error {
	switch {
	case math.IsNaN(c.Rate):
		return fmt.Errorf("redisrate: Rate NaN is not a number")
	case math.IsInf(c.Rate, 0):
		return fmt.Errorf("redisrate: Rate %v is infinite: a shared limit needs a finite rate, in (0,%g]", c.Rate, float64(maxRate))
	case c.Rate <= 0 || c.Rate > maxRate:
		return fmt.Errorf("redisrate: Rate %v out of range (0,%g]", c.Rate, float64(maxRate))
	case c.Burst < 1 || c.Burst > maxBurst:
		return fmt.Errorf("redisrate: Burst %d out of range [1,%d]", c.Burst, int(maxBurst))
	case float64(c.Burst)/c.Rate*float64(time.Second) > float64(maxRefill):
		return fmt.Errorf("redisrate: Burst %d at Rate %v takes %.3gh to refill, above the limit of %v",
			c.Burst, c.Rate, float64(c.Burst)/c.Rate/3600, maxRefill)
	case len(c.Prefix) > MaxKeyLen:
		return fmt.Errorf("redisrate: Prefix of %d bytes is longer than MaxKeyLen %d", len(c.Prefix), MaxKeyLen)
	case strings.ContainsAny(c.Prefix, "{}"):
		return fmt.Errorf("redisrate: Prefix %q contains '{' or '}', which would change the keys' hash tag", c.Prefix)
	case keyed && c.Key != "":
		return fmt.Errorf("redisrate: Key %q set for a keyed limiter, which takes its keys in each call", c.Key)
	case c.Timeout < 0 || c.Timeout > maxTimeout:
		return fmt.Errorf("redisrate: Timeout %v out of range (0,%v]", c.Timeout, maxTimeout)
	case c.Fallback > FailOpen:
		return fmt.Errorf("redisrate: Fallback %v is not a mode", c.Fallback)
	case c.Fallback == FallbackLocal && c.Instances == 0:
		return fmt.Errorf("redisrate: Instances 0: Fallback %q needs the number of processes that share the limit (1 for one)", FallbackLocal)
	case c.Instances < 0 || c.Instances > maxInstances:
		return fmt.Errorf("redisrate: Instances %d out of range [1,%d]", c.Instances, int(maxInstances))
	case c.MaxKeys < 0:
		return fmt.Errorf("redisrate: MaxKeys %d is negative", c.MaxKeys)
	}
	if !keyed {
		if err := validKey(c.Key); err != nil {
			return err
		}
	}
	return nil
}

// validKey checks a bucket's key, before anything is sent to Redis.
func validKey(key string) error {
	if key == "" {
		return errEmptyKey
	}
	if len(key) > MaxKeyLen {
		return &keyLenError{n: len(key)}
	}
	return nil
}

// share returns this instance's share of rate and burst among instances.
func share(rate float64, burst, instances int) (float64, int) {
	return rate / float64(instances), (burst + instances - 1) / instances
}

// duration is a time.Duration in JSON: a Go duration string or integer
// nanoseconds.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s: want a string such as \"5ms\" or integer nanoseconds", b)
	}
	*d = duration(n)
	return nil
}

// MarshalJSON encodes c with Timeout as a Go duration string.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Timeout duration `json:"timeout,omitempty"`
	}{plain(c), duration(c.Timeout)})
}

// UnmarshalJSON decodes c, accepting Timeout as a Go duration string
// ("5ms") or integer nanoseconds; New validates the values. A key that
// matches no field, such as a misspelt "brust", is an error naming it,
// even when the caller's json.Decoder allows unknown fields: a typo in an
// operator's file must not silently leave a field at its default.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		Timeout *duration `json:"timeout,omitempty"`
	}{plain: (*plain)(c), Timeout: (*duration)(&c.Timeout)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("redisrate: config: %w", err)
	}
	return nil
}
