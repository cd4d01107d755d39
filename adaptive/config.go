package adaptive

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
)

// An Algorithm is the rule by which a [Limiter] moves its limit once per
// window.
type Algorithm string

const (
	// Gradient (the default) sets the limit to limit × baseline ÷ sampled
	// latency, plus a headroom of sqrt(limit), smoothed: the family of
	// Netflix's Gradient2 and Vegas limits and Envoy's adaptive
	// concurrency filter. With the mean latency as the sample, a service of
	// W workers settles at W + sqrt(limit) (see the package documentation).
	Gradient Algorithm = "gradient"
	// AIMD adds 1 to the limit in each window whose sampled latency is at
	// most LatencyThreshold × the baseline and that saw no drop (an error
	// or a timeout), and multiplies it by Backoff otherwise.
	AIMD Algorithm = "aimd"
)

// Config configures a [Limiter]. The zero value is valid, and is meant to
// work without tuning: the gradient algorithm, limits from 1 to 1000
// starting at 20, a window of 100ms holding at least 20 samples, the mean
// latency, a baseline re-measured every 10s, and no queue.
//
// Config is JSON-taggable so operators can keep it in a file; durations
// are written as Go duration strings ("250ms") or integer nanoseconds. A
// key that names no field is an error (see [Config.UnmarshalJSON]).
type Config struct {
	// Algorithm is Gradient (the default, "gradient") or AIMD ("aimd").
	Algorithm Algorithm `json:"algorithm,omitempty"`

	// MinLimit and MaxLimit bound the limit, from 1 to 1<<20; defaults 1
	// and 1000. MinLimit must not exceed MaxLimit.
	MinLimit int `json:"minLimit,omitempty"`
	MaxLimit int `json:"maxLimit,omitempty"`
	// InitialLimit is the limit before the first window, from MinLimit to
	// MaxLimit; default 20, or MinLimit or MaxLimit if 20 is outside them.
	InitialLimit int `json:"initialLimit,omitempty"`

	// Window is the least time between two updates of the limit, from 1ms
	// to 1m; default 100ms. A window also lasts until it holds MinSamples
	// latency samples and at least twice the latency it measured last, so
	// that a limit change has shown in the latencies before the next.
	Window time.Duration `json:"window,omitempty"`
	// MinSamples is the least number of latency samples a window must
	// hold before the limit moves, from 1 to 1<<20; default 20.
	MinSamples int `json:"minSamples,omitempty"`
	// Smoothing is the weight of a window's new limit against the old one
	// (Gradient only), in (0,1]; default 0.5. 1 applies each window's
	// limit as computed.
	Smoothing float64 `json:"smoothing,omitempty"`
	// Percentile is the statistic of a window's latencies that is compared
	// with the baseline: 0 (the default) means their mean, which by
	// Little's law grows exactly with the queue; a value in (0,1), such as
	// 0.9, means that quantile of the window's samples.
	Percentile float64 `json:"percentile,omitempty"`

	// LatencyThreshold (AIMD only) is how many times the baseline a
	// window's latency may be before the limit backs off, above 1;
	// default 2.
	LatencyThreshold float64 `json:"latencyThreshold,omitempty"`
	// Backoff (AIMD only) multiplies the limit on a backoff, in (0,1);
	// default 0.9.
	Backoff float64 `json:"backoff,omitempty"`

	// ProbeInterval is the longest time between two measurements of the
	// baseline latency at low concurrency (see the package documentation),
	// from 100ms to 1h; default 10s. The baseline is also re-measured when
	// the limit falls by a third within a run of falling windows.
	ProbeInterval time.Duration `json:"probeInterval,omitempty"`
	// ProbeSamples is how many latency samples a measurement of the
	// baseline collects, from 1 to 1<<20; default 100. A measurement also
	// lasts at least one Window.
	ProbeSamples int `json:"probeSamples,omitempty"`
	// MaxBaselineRise is the most by which one measurement may multiply
	// the baseline, at least 1; default 2. It bounds how fast the baseline
	// can climb during a long incident. A measurement may lower it at will.
	MaxBaselineRise float64 `json:"maxBaselineRise,omitempty"`

	// MaxWaiting is how many calls may wait, first in first out, for a
	// slot when the limit is reached, from 0 to 1<<20; 0 means the
	// default, MaxLimit. The queue absorbs a burst that the limit would
	// otherwise refuse and the callers retry: a spike shorter than the
	// callers' timeouts is served late rather than shed.
	MaxWaiting int `json:"maxWaiting,omitempty"`
	// MaxWait is the longest time a call may wait in the queue. Default
	// 0: half the time its context has left when it arrives, so that a
	// call served after waiting still has time to run, and the queue holds
	// no call its caller will have given up on (a FIFO queue that let
	// calls wait until their deadline would serve only calls about to time
	// out, in a sustained overload). A call whose context has no deadline
	// does not wait: give calls deadlines (httpmw.WithDeadline and gRPC
	// propagate the caller's).
	MaxWait time.Duration `json:"maxWait,omitempty"`
	// NoQueue refuses a call over the limit at once: no call waits. It may
	// not be set together with MaxWaiting or MaxWait.
	NoQueue bool `json:"noQueue,omitempty"`
}

// The defaults of Window and ProbeInterval, for code that scales them.
const (
	DefaultWindow        = 100 * time.Millisecond
	DefaultProbeInterval = 10 * time.Second
)

// Defaults and bounds of the configuration.
const (
	defaultMinLimit        = 1
	defaultMaxLimit        = 1000
	defaultInitialLimit    = 20
	defaultWindow          = DefaultWindow
	defaultMinSamples      = 20
	defaultSmoothing       = 0.5
	defaultThreshold       = 2
	defaultBackoff         = 0.9
	defaultProbeInterval   = DefaultProbeInterval
	defaultProbeSamples    = 100
	defaultMaxBaselineRise = 2

	maxLimit   = 1 << 20
	maxSamples = 1 << 20
	maxWaiting = 1 << 20
)

// withDefaults validates c and returns it with defaults applied.
func (c Config) withDefaults() (Config, error) {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("adaptive: %s %v %s", field, v, want)
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case c.Algorithm != "" && c.Algorithm != Gradient && c.Algorithm != AIMD:
		return c, bad("Algorithm", fmt.Sprintf("%q", c.Algorithm), `is neither "gradient" nor "aimd"`)
	case c.MinLimit < 0 || c.MinLimit > maxLimit:
		return c, bad("MinLimit", c.MinLimit, fmt.Sprintf("out of range [1,%d]", maxLimit))
	case c.MaxLimit < 0 || c.MaxLimit > maxLimit:
		return c, bad("MaxLimit", c.MaxLimit, fmt.Sprintf("out of range [1,%d]", maxLimit))
	case c.InitialLimit < 0 || c.InitialLimit > maxLimit:
		return c, bad("InitialLimit", c.InitialLimit, fmt.Sprintf("out of range [1,%d]", maxLimit))
	case c.Window != 0 && (c.Window < time.Millisecond || c.Window > time.Minute):
		return c, bad("Window", c.Window, "out of range [1ms,1m]")
	case c.MinSamples < 0 || c.MinSamples > maxSamples:
		return c, bad("MinSamples", c.MinSamples, fmt.Sprintf("out of range [1,%d]", maxSamples))
	case !finite(c.Smoothing) || c.Smoothing < 0 || c.Smoothing > 1:
		return c, bad("Smoothing", c.Smoothing, "out of range (0,1]")
	case !finite(c.Percentile) || c.Percentile < 0 || c.Percentile >= 1:
		return c, bad("Percentile", c.Percentile, "out of range [0,1) (0 means the mean)")
	case !finite(c.LatencyThreshold) || c.LatencyThreshold < 0 || (c.LatencyThreshold != 0 && c.LatencyThreshold <= 1):
		return c, bad("LatencyThreshold", c.LatencyThreshold, "is not above 1")
	case !finite(c.Backoff) || c.Backoff < 0 || c.Backoff >= 1:
		return c, bad("Backoff", c.Backoff, "out of range (0,1)")
	case c.ProbeInterval != 0 && (c.ProbeInterval < 100*time.Millisecond || c.ProbeInterval > time.Hour):
		return c, bad("ProbeInterval", c.ProbeInterval, "out of range [100ms,1h]")
	case c.ProbeSamples < 0 || c.ProbeSamples > maxSamples:
		return c, bad("ProbeSamples", c.ProbeSamples, fmt.Sprintf("out of range [1,%d]", maxSamples))
	case !finite(c.MaxBaselineRise) || c.MaxBaselineRise < 0 || (c.MaxBaselineRise != 0 && c.MaxBaselineRise < 1):
		return c, bad("MaxBaselineRise", c.MaxBaselineRise, "is below 1")
	case c.MaxWaiting < 0 || c.MaxWaiting > maxWaiting:
		return c, bad("MaxWaiting", c.MaxWaiting, fmt.Sprintf("out of range [0,%d]", maxWaiting))
	case c.MaxWait < 0:
		return c, bad("MaxWait", c.MaxWait, "is negative")
	case c.NoQueue && (c.MaxWaiting != 0 || c.MaxWait != 0):
		return c, fmt.Errorf("adaptive: NoQueue set with MaxWaiting %d or MaxWait %v; choose one", c.MaxWaiting, c.MaxWait)
	}
	if c.Algorithm == "" {
		c.Algorithm = Gradient
	}
	if c.MinLimit == 0 {
		c.MinLimit = defaultMinLimit
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = max(defaultMaxLimit, c.MinLimit)
	}
	if c.MinLimit > c.MaxLimit {
		return c, fmt.Errorf("adaptive: MinLimit %d above MaxLimit %d", c.MinLimit, c.MaxLimit)
	}
	if c.MaxWaiting == 0 && !c.NoQueue {
		c.MaxWaiting = c.MaxLimit
	}
	if c.InitialLimit == 0 {
		c.InitialLimit = min(max(defaultInitialLimit, c.MinLimit), c.MaxLimit)
	}
	if c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit {
		return c, fmt.Errorf("adaptive: InitialLimit %d out of range [MinLimit %d, MaxLimit %d]", c.InitialLimit, c.MinLimit, c.MaxLimit)
	}
	if c.Window == 0 {
		c.Window = defaultWindow
	}
	if c.MinSamples == 0 {
		c.MinSamples = defaultMinSamples
	}
	if c.Smoothing == 0 {
		c.Smoothing = defaultSmoothing
	}
	if c.LatencyThreshold == 0 {
		c.LatencyThreshold = defaultThreshold
	}
	if c.Backoff == 0 {
		c.Backoff = defaultBackoff
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = defaultProbeInterval
	}
	if c.ProbeSamples == 0 {
		c.ProbeSamples = defaultProbeSamples
	}
	if c.MaxBaselineRise == 0 {
		c.MaxBaselineRise = defaultMaxBaselineRise
	}
	return c, nil
}

// MarshalJSON encodes c with its durations as Go duration strings.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Window        jsonx.Duration `json:"window,omitempty"`
		ProbeInterval jsonx.Duration `json:"probeInterval,omitempty"`
		MaxWait       jsonx.Duration `json:"maxWait,omitempty"`
	}{plain(c), jsonx.Duration(c.Window), jsonx.Duration(c.ProbeInterval), jsonx.Duration(c.MaxWait)})
}

// UnmarshalJSON decodes c, accepting durations as Go duration strings
// ("250ms") or integer nanoseconds; New validates the values.
//
// A key that matches no field, such as a misspelt "maxLimt", is always an
// error naming it (`adaptive: config: unknown field "maxLimt"`), even when
// the caller's json.Decoder allows unknown fields: a typo in an operator's
// file must not silently leave a field at its default. Keys match as
// encoding/json matches them, ignoring case.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	aux := struct {
		*plain
		Window        *jsonx.Duration `json:"window,omitempty"`
		ProbeInterval *jsonx.Duration `json:"probeInterval,omitempty"`
		MaxWait       *jsonx.Duration `json:"maxWait,omitempty"`
	}{
		plain:         (*plain)(c),
		Window:        (*jsonx.Duration)(&c.Window),
		ProbeInterval: (*jsonx.Duration)(&c.ProbeInterval),
		MaxWait:       (*jsonx.Duration)(&c.MaxWait),
	}
	return jsonx.DecodeConfig("adaptive: config", b, &aux)
}
