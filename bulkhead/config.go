package bulkhead

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// Config configures a [Bulkhead]. The zero value is valid: up to 25 calls in
// flight (as in resilience4j), and no queue: a call that finds the bulkhead
// full is rejected at once with [ErrFull].
//
// Config is JSON-taggable so operators can keep it in a file; MaxWait is
// written as a Go duration string ("250ms", "1m30s") or integer nanoseconds.
// A key that names no field is an error (see [Config.UnmarshalJSON]).
type Config struct {
	// MaxConcurrent is how many calls may be in flight at once, from 1 to
	// 1<<30; default 25. [Bulkhead.SetLimit] changes it at run time.
	MaxConcurrent int `json:"maxConcurrent,omitempty"`

	// MaxWaiting is how many calls of [Bulkhead.Acquire] and [Bulkhead.Do]
	// may wait, first in first out, for a slot when the bulkhead is full,
	// from 0 to 1<<20. Default 0: no queue, a call that finds the bulkhead
	// full is rejected at once. A call that finds the queue full is rejected
	// at once.
	MaxWaiting int `json:"maxWaiting,omitempty"`

	// MaxWait is the longest time a call may wait in the queue before it is
	// rejected with ErrFull. Default 0: a call waits until its context ends.
	MaxWait time.Duration `json:"maxWait,omitempty"`
}

// Limits on configuration values, beyond which New returns an error. The
// limits keep the in-flight count and the queue length inside their halves
// of the bulkhead's state word (see Bulkhead.state).
const (
	defaultMaxConcurrent = 25
	maxConcurrent        = 1 << 30
	maxWaiting           = 1 << 20
)

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("bulkhead: %s %v %s", field, v, want)
	}
	switch {
	case c.MaxConcurrent < 0 || c.MaxConcurrent > maxConcurrent:
		return c, bad("MaxConcurrent", c.MaxConcurrent, fmt.Sprintf("out of range [1,%d]", maxConcurrent))
	case c.MaxWaiting < 0 || c.MaxWaiting > maxWaiting:
		return c, bad("MaxWaiting", c.MaxWaiting, fmt.Sprintf("out of range [0,%d]", maxWaiting))
	case c.MaxWait < 0:
		return c, bad("MaxWait", c.MaxWait, "is negative")
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = defaultMaxConcurrent
	}
	return c, nil
}

// MarshalJSON encodes c with MaxWait as a Go duration string.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		MaxWait jsonx.Duration `json:"maxWait,omitempty"`
	}{plain(c), jsonx.Duration(c.MaxWait)})
}

// UnmarshalJSON decodes c, accepting MaxWait as a Go duration string
// ("250ms") or integer nanoseconds; New validates the values.
//
// A key that matches no field, such as a misspelt "maxWaitng", is always an
// error naming it (`bulkhead: config: unknown field "maxWaitng"`), even when
// the caller's json.Decoder allows unknown fields: a typo in an operator's
// file must not silently leave a field at its default. Keys match as
// encoding/json matches them, ignoring case ("MaxWaiting" is "maxWaiting").
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		MaxWait *jsonx.Duration `json:"maxWait,omitempty"`
	}{
		plain:   (*plain)(c),
		MaxWait: (*jsonx.Duration)(&c.MaxWait),
	}
	return jsonx.DecodeConfig("bulkhead: config", b, &aux)
}
