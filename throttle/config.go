package throttle

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// Config configures a [Throttle]. The zero value is valid: K = 2, a window
// of 2 minutes, a rejection probability capped at 0.9, refusals recognised
// by seawall.IsOverload, and math/rand/v2's per-thread source.
//
// Config is JSON-taggable so operators can keep it in a file; Window is
// written as a Go duration string ("2m") or integer nanoseconds. A key that
// names no field is an error (see [Config.UnmarshalJSON]); Rejected and
// Rand have no key.
type Config struct {
	// K is the SRE book's multiplier: the throttle lets through about K
	// requests per request the backend accepts before it starts rejecting
	// locally. It is at least 1 (below 1 a backend that accepts every call
	// would be throttled) and at most 1000; default 2. Lower is more
	// aggressive: K = 1.1 sheds almost all the load the backend refuses,
	// K = 2 lets through about twice what it accepts, so that it still
	// sees enough traffic to notice when it recovers.
	K float64 `json:"k,omitempty"`

	// Window is the span over which requests and accepts are counted, from
	// 1s to 1h; default 2 minutes, the SRE book's. The counts of the window
	// are estimated from samples of the running counts, kept about
	// Window/120 apart (1s by default) while the throttle is deciding on
	// its slow path, and spread evenly over the gaps between samples: see
	// [Throttle] for how exact that is.
	Window time.Duration `json:"window,omitempty"`

	// MaxProbability caps the probability of a local rejection, in (0, 1];
	// default 0.9. Below 1, at least 1 − MaxProbability of the requests
	// reach a backend that refuses everything, so the throttle learns of
	// its recovery within a few requests instead of by the window's
	// forgetting alone (failsafe-go's adaptivethrottler has the same cap,
	// and the same default).
	MaxProbability float64 `json:"maxProbability,omitempty"`

	// LiftAfter is how many requests the backend must accept after its
	// latest refusal for the throttle to stop rejecting, until the next
	// refusal, from 1 to 1<<20; default 1. The window remembers an
	// overload for its whole span, and the formula alone goes on
	// rejecting a share of the requests to a backend that has recovered
	// until the accepts outweigh the refusals: for a client that sends a
	// few requests a second, for seconds after a spike of seconds, every
	// request it rejects failing for nothing. A backend that accepts again
	// after refusing is taking work; its next refusal puts the formula
	// back at once, whole window and all. NoLift keeps the book's formula
	// alone.
	LiftAfter int `json:"liftAfter,omitempty"`
	// NoLift: the throttle rejects by the formula alone (see LiftAfter).
	// It may not be set together with LiftAfter.
	NoLift bool `json:"noLift,omitempty"`

	// Rejected decides which errors are the backend's refusals: requests
	// that count against the accepts. Default: seawall.IsOverload (a
	// seawall.ErrRejected with a retry-after hint, which is what httpmw and
	// grpcmw make of a 429, a 503 with Retry-After, a RESOURCE_EXHAUSTED and
	// an UNAVAILABLE with pushback). See [Permit.Done] for how every other
	// error counts.
	Rejected func(err error) bool `json:"-"`

	// Rand returns a number in [0, 1); a request is rejected locally when
	// it returns less than the rejection probability. It is called only
	// when the probability is above 0. Default: math/rand/v2's Float64,
	// which neither locks nor allocates. Tests inject a deterministic one;
	// it must be safe for concurrent use if the Throttle is.
	Rand func() float64 `json:"-"`
}

// DefaultWindow is the default Window, the SRE book's, for code that
// scales it.
const DefaultWindow = 2 * time.Minute

// Defaults and limits on configuration values, beyond which New returns an
// error.
const (
	defaultK              = 2
	maxK                  = 1000
	defaultWindow         = DefaultWindow
	minWindow             = time.Second
	maxWindow             = time.Hour
	defaultMaxProbability = 0.9
	defaultLiftAfter      = 1
	maxLiftAfter          = 1 << 20
)

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("throttle: %s %v %s", field, v, want)
	}
	switch {
	case c.K != 0 && !(c.K >= 1 && c.K <= maxK): // NaN too
		return c, bad("K", c.K, fmt.Sprintf("out of range [1,%d]", maxK))
	case c.Window != 0 && (c.Window < minWindow || c.Window > maxWindow):
		return c, bad("Window", c.Window, fmt.Sprintf("out of range [%v,%v]", minWindow, maxWindow))
	case c.MaxProbability != 0 && !(c.MaxProbability > 0 && c.MaxProbability <= 1):
		return c, bad("MaxProbability", c.MaxProbability, "out of range (0,1]")
	case c.LiftAfter < 0 || c.LiftAfter > maxLiftAfter:
		return c, bad("LiftAfter", c.LiftAfter, fmt.Sprintf("out of range [1,%d]", maxLiftAfter))
	case c.NoLift && c.LiftAfter != 0:
		return c, fmt.Errorf("throttle: NoLift set with LiftAfter %d; choose one", c.LiftAfter)
	}
	if c.LiftAfter == 0 && !c.NoLift {
		c.LiftAfter = defaultLiftAfter
	}
	if c.K == 0 {
		c.K = defaultK
	}
	if c.Window == 0 {
		c.Window = defaultWindow
	}
	if c.MaxProbability == 0 {
		c.MaxProbability = defaultMaxProbability
	}
	return c, nil
}

// MarshalJSON encodes c with Window as a Go duration string.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Window jsonx.Duration `json:"window,omitempty"`
	}{plain(c), jsonx.Duration(c.Window)})
}

// UnmarshalJSON decodes c, accepting Window as a Go duration string ("2m")
// or integer nanoseconds; New validates the values.
//
// A key that matches no field, such as a misspelt "windw", is always an
// error naming it (`throttle: config: unknown field "windw"`), even when
// the caller's json.Decoder allows unknown fields: a typo in an operator's
// file must not silently leave a field at its default. Keys match as
// encoding/json matches them, ignoring case ("K" is "k").
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		Window *jsonx.Duration `json:"window,omitempty"`
	}{
		plain:  (*plain)(c),
		Window: (*jsonx.Duration)(&c.Window),
	}
	return jsonx.DecodeConfig("throttle: config", b, &aux)
}
