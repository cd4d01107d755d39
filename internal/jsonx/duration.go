// Package jsonx holds JSON helpers shared by the policies' Config types.
package jsonx

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that marshals as a Go duration string ("250ms")
// and unmarshals from such a string or from an integer number of nanoseconds,
// so operators can write durations readably in configuration files.
//
// Config types use it through a pointer conversion of their own
// time.Duration fields, keeping time.Duration in the Go API.
type Duration time.Duration

// MarshalJSON encodes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON decodes a duration string or an integer of nanoseconds; null
// leaves d unchanged.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does for values it cannot set to null
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s: want a string such as \"1.5s\" or integer nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}
