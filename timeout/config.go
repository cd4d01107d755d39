package timeout

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// Config configures a [Timeout]. Timeout is required; the zero value of
// every other field is its default.
//
// Config is JSON-taggable so operators can keep it in a file; Timeout is
// written as a Go duration string ("250ms", "1m30s") or integer nanoseconds.
// A key that names no field is an error (see [Config.UnmarshalJSON]).
type Config struct {
	// Timeout is how long a call may run: the operation gets a context
	// whose deadline is Timeout from the start of the call (or the
	// caller's deadline, if that is earlier). Required, > 0.
	Timeout time.Duration `json:"timeout"`

	// Abandon chooses what Do does when the timeout expires and the
	// operation has not returned (it ignores its context).
	//
	// Default false: Do waits for the operation to return, then returns
	// the timeout's error. The operation runs on the caller's goroutine;
	// no goroutine is started. A well-behaved operation, one that returns
	// when its context ends, returns promptly, so this is the right mode
	// for nearly every use.
	//
	// With Abandon, Do runs the operation on a goroutine it starts, and
	// returns as soon as the timeout expires (or the caller's context
	// ends), leaving the operation running: its result is discarded, and
	// the goroutine, with whatever it holds, lives until the operation
	// returns. [Metrics] counts such operations as Abandoned, and those
	// still running as Running. Each call then costs a goroutine and a
	// channel. Use it only for an operation that cannot be made to honour
	// its context and whose caller must not wait for it.
	Abandon bool `json:"abandon,omitempty"`
}

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Timeout == 0:
		return c, fmt.Errorf("timeout: Timeout is required (> 0)")
	case c.Timeout < 0:
		return c, fmt.Errorf("timeout: Timeout %v must be > 0", c.Timeout)
	}
	return c, nil
}

// MarshalJSON encodes c with Timeout as a Go duration string.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Timeout jsonx.Duration `json:"timeout"`
	}{plain(c), jsonx.Duration(c.Timeout)})
}

// UnmarshalJSON decodes c, accepting Timeout as a Go duration string
// ("250ms") or integer nanoseconds; New validates the values.
//
// A key that matches no field, such as a misspelt "timout", is always an
// error naming it (`timeout: config: unknown field "timout"`), even when
// the caller's json.Decoder allows unknown fields: a typo in an operator's
// file must not silently leave a field at its default. Keys match as
// encoding/json matches them, ignoring case ("Timeout" is "timeout").
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		Timeout *jsonx.Duration `json:"timeout"`
	}{
		plain:   (*plain)(c),
		Timeout: (*jsonx.Duration)(&c.Timeout),
	}
	return jsonx.DecodeConfig("timeout: config", b, &aux)
}
