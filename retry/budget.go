package retry

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/jsonx"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrBudgetExhausted is the reason retries stop when the retry budget
// refuses one ([Budget.AllowRetry] returned false). It matches
// seawall.ErrRejected with errors.Is: the retry was not made, and nothing
// is known about whether it would have succeeded.
var ErrBudgetExhausted = seawall.NewRejection("retry: budget exhausted")

// BudgetMode is the algorithm of a [Budget], the type of
// [BudgetConfig.Mode]. In JSON it is the constant's string.
type BudgetMode string

// The budget modes. The zero BudgetMode, "", is RatioMode.
const (
	// RatioMode bounds the retries of a sliding window to a share of its
	// requests (Finagle's RetryBudget): the default.
	RatioMode BudgetMode = "ratio"
	// TokensMode is gRPC's retry throttling (gRFC A6): a token bucket that
	// failures drain and successes refill.
	TokensMode BudgetMode = "tokens"
)

// BudgetConfig configures a [Budget]. The zero value is valid: ratio mode,
// allowing retries of up to 10% of the requests of the last 5 seconds, plus
// a floor of 1 retry per window (per 5 seconds) lent only while the
// caller's recent attempts mostly succeed.
//
// A field left zero takes its documented default. Fields that belong to the
// mode not chosen must be left zero: setting one is an error, as it is
// likely a mistake.
//
// BudgetConfig is JSON-taggable so operators can keep it in a file; Window
// is written as a Go duration string ("10s") or integer nanoseconds. A key
// that names no field is an error (see [BudgetConfig.UnmarshalJSON]), and
// every float field must be finite, in Go as in JSON.
type BudgetConfig struct {
	// Disabled turns the budget off: NewBudget returns a nil *Budget, on
	// which every method is a no-op and every retry is allowed. The other
	// fields are still validated, so a typo is reported when the budget is
	// switched off as when it is on.
	Disabled bool `json:"disabled,omitempty"`

	// Mode is RatioMode ("ratio", the default) or TokensMode ("tokens").
	//
	// In ratio mode, the retries of the last Window may number at most
	// Ratio × the requests of the last Window, + MinRetriesPerSecond ×
	// Window (in seconds) while the caller is healthy: while at most half
	// of its recent attempts failed (see [Budget]). This is Finagle's
	// RetryBudget, and the SRE book's advice to keep retries under 10% of
	// requests; the health condition keeps a fleet's floors from adding up
	// in an outage (see the package doc).
	//
	// In tokens mode, the budget is gRPC's retry throttling (gRFC A6): a
	// token count starts at MaxTokens; each failed attempt takes 1 token
	// (down to 0), each successful attempt gives back TokenRatio (up to
	// MaxTokens), and a retry is allowed only while the count is above
	// MaxTokens/2.
	Mode BudgetMode `json:"mode,omitempty"`

	// Ratio is, in ratio mode, the share of requests that may be retried,
	// in (0, 10]; default 0.1. 10 lets every request of the window be
	// retried 10 times.
	Ratio float64 `json:"ratio,omitempty"`

	// MinRetriesPerSecond is, in ratio mode, the floor: retries allowed
	// whatever the traffic, so a client that sends few requests can still
	// retry an occasional failure. It is lent only while the caller is
	// healthy (at most half of its recent attempts failed), so it does not
	// add up over a fleet of callers that all fail at once. It is in
	// [0, 1e6]; default 1/Window.Seconds(): one retry per Window (0.2 with
	// the default 5s window), so that at the start of an outage, before
	// its health turns, each caller can spend at most one floor retry.
	// Zero means the default: set NoFloor for no floor. An explicit value
	// is a rate, whatever the Window: 1 is 5 retries per 5s window.
	MinRetriesPerSecond float64 `json:"minRetriesPerSecond,omitempty"`

	// NoFloor removes the floor in ratio mode: only Ratio × requests may be
	// retried. It may not be set together with MinRetriesPerSecond.
	NoFloor bool `json:"noFloor,omitempty"`

	// Window is, in ratio mode, the sliding window over which requests and
	// retries are counted, from 100ms to 1h; default 5s.
	//
	// A longer window smooths more, but lends more: when failures begin
	// after quiet traffic, the retries earned by the Window before them can
	// be spent at once. Over an overload of length L whose requests come at
	// r1 a second, after traffic at r0, retries number up to about
	// Ratio × (r1 × L + r0 × Window) + the floor: with the default 10% and
	// a 5s window, a 5s spike to twice the traffic is held to about 1.15×
	// its requests; a 10s window would let it reach 1.2×.
	Window time.Duration `json:"window,omitempty"`

	// MaxTokens is, in tokens mode, the size of the token bucket, in
	// (0, 1000] as in gRPC; default 10. Retries stop when the count falls to
	// MaxTokens/2 or below.
	MaxTokens float64 `json:"maxTokens,omitempty"`

	// TokenRatio is, in tokens mode, the tokens a successful attempt gives
	// back, in (0, MaxTokens]; default 0.1, or MaxTokens if that is smaller.
	TokenRatio float64 `json:"tokenRatio,omitempty"`
}

// DefaultBudgetWindow is the Window of a ratio-mode budget that leaves it
// zero.
const DefaultBudgetWindow = 5 * time.Second

// Limits on budget configuration values, beyond which NewBudget returns an
// error.
const (
	maxRatio         = 10
	maxMinRetries    = 1e6
	minBudgetWindow  = 100 * time.Millisecond
	maxBudgetWindow  = time.Hour
	maxTokensLimit   = 1000
	defaultRatio     = 0.1
	defaultWindow    = DefaultBudgetWindow
	defaultMaxTokens = 10
	defaultTokRatio  = 0.1
)

// withDefaults validates c and returns it with defaults applied.
func (c BudgetConfig) withDefaults() (BudgetConfig, error) {
	if err := c.validate(); err != nil {
		return c, err
	}
	if c.Mode == TokensMode {
		return c.tokensDefaults(), nil
	}
	c.Mode = RatioMode
	return c.ratioDefaults(), nil
}

func (c *BudgetConfig) validate() error {
	switch c.Mode {
	case "", RatioMode:
		return c.validateRatio()
	case TokensMode:
		return c.validateTokens()
	}
	return fmt.Errorf("retry: budget Mode %q unknown; want %q or %q", c.Mode, RatioMode, TokensMode)
}

// badBudget returns the error of a budget field whose value v is not what
// is wanted.
func badBudget(field string, v any, want string) error {
	return fmt.Errorf("retry: budget %s %v %s", field, v, want)
}

// otherMode returns the error of a field of the mode not chosen, set to v.
func (c *BudgetConfig) otherMode(field string, v any) error {
	mode := c.Mode
	if mode == "" {
		mode = RatioMode
	}
	return fmt.Errorf("retry: budget %s %v set in mode %q", field, v, mode)
}

// outside reports whether v is NaN or outside [lo, hi]. The ranges that
// exclude 0 are checked with lo 0: there, 0 means the default.
func outside(v, lo, hi float64) bool { return math.IsNaN(v) || v < lo || v > hi }

// MarshalJSON encodes c with Window as a Go duration string.
func (c BudgetConfig) MarshalJSON() ([]byte, error) {
	type plain BudgetConfig
	return json.Marshal(struct {
		plain
		Window jsonx.Duration `json:"window,omitempty"`
	}{plain(c), jsonx.Duration(c.Window)})
}

// UnmarshalJSON decodes c, accepting Window as a Go duration string ("10s")
// or integer nanoseconds; NewBudget validates the values.
//
// A key that matches no field, such as a misspelt "windw", is always an
// error naming it (`retry: budget config: unknown field "windw"`; within a
// [Config], `retry: config: unknown field "budget.windw"`), even when the
// caller's json.Decoder allows unknown fields: a typo in an operator's file
// must not silently leave a field at its default. Keys match as
// encoding/json matches them, ignoring case ("MaxTokens" is "maxTokens").
func (c *BudgetConfig) UnmarshalJSON(b []byte) error {
	type plain BudgetConfig
	aux := struct {
		*plain
		Window *jsonx.Duration `json:"window,omitempty"`
	}{
		plain:  (*plain)(c),
		Window: (*jsonx.Duration)(&c.Window),
	}
	return jsonx.DecodeConfig("retry: budget config", b, &aux)
}

// A Budget bounds retries to a share of requests, so that when a dependency
// is overloaded, many callers retrying at once cannot multiply its load:
// with every request failing and up to 3 retries each, retries alone would
// quadruple it; the default budget holds the total to about 1.1×, however
// many callers each keep a budget of their own.
//
// Its users call [Budget.Request] when a request (its first attempt)
// begins, [Budget.Success] or [Budget.Failure] when an attempt ends, and
// [Budget.AllowRetry] before each retry, which they skip (failing with
// [ErrBudgetExhausted]) when it returns false. A [Retry] does all of this;
// share one Budget among the Retry values of a client (Config.SharedBudget)
// so that they draw on one budget.
//
// Request and Success are the hot path: Request, and Success in tokens
// mode, increment a per-P counter (no lock, no shared contended word, no
// clock read, no allocation); Success in ratio mode does nothing. Failure
// is the failure path: in ratio mode a per-P counter increment; in tokens
// mode, like AllowRetry and Metrics, the slow path: they take a mutex and read the
// clock at most once.
//
// Ratio mode (see [BudgetConfig.Mode]) allows a retry when the retries of
// the last Window, this one included, number at most Ratio × R, + the
// floor MinRetriesPerSecond × Window if the caller is healthy, R being the
// requests of the last Window.
//
// The caller is healthy when the failures it reported (Failure) number at
// most half of its attempts (requests + retries allowed), both counted
// exactly from the sample at or before the start of the window (see below)
// to now: over the last Window and up to a tenth of one more, or, for a
// caller quiet longer than that, back to its last slow-path visit, so that
// a rare caller whose every request fails stays unhealthy. A budget that
// has counted fewer than 10 attempts has no history to judge by and is
// healthy. Failures are counted with a per-P counter, off the success
// path; a user of Budget who never calls Failure keeps the floor always.
//
// Retries are counted at the time they are allowed, in buckets a tenth of a
// Window wide, each remembering its latest retry; a bucket's retries leave
// the count together, a Window after its latest retry. So each retry counts
// for at least a Window, and at most a tenth of a Window longer: the count
// errs on the side of fewer retries.
//
// Requests are not timed, since reading the clock would cost more than
// counting them: R is estimated. The slow path keeps a ring of 21 samples
// (time, requests so far), starting with (creation, 0). The newest sample
// is the latest slow-path visit; it is kept, and a new one begun, when a
// visit comes a tenth of a Window after the sample before it, so samples
// are kept at most about one per tenth of a Window, the ring spans a whole
// Window, and the last visit before any longer silence is kept. R is the
// requests so far minus the count at the start of the window, interpolated
// linearly between the two points around it (samples, or now). That is
// exact if the requests between those points arrived at an even pace, and
// otherwise off by at most the number that arrived between them. While
// retries are asked for at least every δ, the points are at most a tenth
// of a Window + δ apart: for steady traffic, an error of at most about
// R/10, and none for traffic at a constant rate. After a silence of the
// slow path the points may be far apart: a burst of N requests made just
// after a visit and followed by a silence of length G (no retries asked
// for) is counted as if spread over the silence, lending up to
// N × Window/G requests to the window that ends it (a million requests, an
// hour, a 10s window: about 2800 requests, so 280 retries). Metrics is a
// slow-path visit too: calling it periodically, as a metrics exporter
// does, keeps the points close.
//
// Tokens mode is gRPC's retry throttling. Successes are counted on the hot
// path and folded into the token count at the next slow-path visit, as
// min(MaxTokens, tokens + TokenRatio × successes), before the visit applies
// its failure or decision. Since every failure is a slow-path visit, the
// count only rises between two visits, so capping once equals capping after
// each success: the result is exactly that of applying the attempts in
// order (up to the order of attempts that end at the same moment).
//
// The zero BudgetConfig is valid. A nil *Budget is a disabled budget: its
// Request, Success and Failure do nothing, AllowRetry always returns true,
// and Metrics returns zeros. A Budget is safe for concurrent use by multiple
// goroutines.
type Budget struct {
	// Read by the hot path, written only by New (and, rarely, the overflow
	// counters): the padding keeps the mutex and the algorithm's state,
	// written by the slow path, off this cache line, so that slow-path
	// writes do not evict it from the caches of the goroutines on the hot
	// path.
	counts shard.Counters // per-P: cRequests, cSuccesses (tokens mode)
	tokens bool           // tokens mode: bucket decides; otherwise window
	_      [64]byte

	cfg BudgetConfig // with defaults applied

	mu     sync.Mutex
	window ratioWindow // ratio mode (budget_ratio.go)
	bucket tokenBucket // tokens mode (budget_tokens.go)
	// Both modes.
	retries, exhausted uint64
	dry                bool      // in a period of refusals (see episode)
	lastRefusal        time.Time // the latest refusal, while dry

	slot obs.Slot // the registry that named this budget, if any
}

// Indexes of the per-P counters.
const (
	cRequests = iota
	cSuccesses
	cFailures // ratio mode: the floor's health
)

// NewBudget returns a budget configured by cfg, or an error naming the
// first invalid field of cfg. If cfg.Disabled, it returns nil, nil (a nil
// *Budget allows every retry) once cfg is found valid.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	cfg, err := cfg.withDefaults()
	if err != nil || cfg.Disabled {
		return nil, err
	}
	b := &Budget{cfg: cfg, tokens: cfg.Mode == TokensMode}
	b.counts.Init()
	if b.tokens {
		b.bucket.init(cfg)
	} else {
		b.window.init(cfg)
	}
	return b, nil
}

// Request records that a request begins: its first attempt is about to be
// made. Retries of it must not call Request again. It is the hot path: one
// per-P counter increment. On a nil b it does nothing.
func (b *Budget) Request() {
	if b != nil {
		b.counts.Add(cRequests) // the call Request inlines to
	}
}

// Success records that an attempt (first or retry) succeeded. In ratio
// mode it does nothing; in tokens mode it counts the success, which gives
// back TokenRatio tokens. It is the hot path: at most one per-P counter
// increment. On a nil b it does nothing.
func (b *Budget) Success() {
	if b != nil && b.tokens { // inlined: free in ratio mode
		b.counts.Add(cSuccesses)
	}
}

// Failure records that an attempt (first or retry) failed with an error
// worth retrying, the last attempt's included. In tokens mode it takes 1
// token (down to 0), under the budget's mutex; in ratio mode it counts the
// failure (a per-P counter increment, no lock), which decides whether the
// floor lends (see [Budget]). On a nil b it does nothing.
//
// Do not call it for outcomes that say nothing about the dependency's
// health, such as the caller's own cancellation.
func (b *Budget) Failure() {
	if b == nil {
		return
	}
	if !b.tokens {
		b.counts.Add(cFailures)
		return
	}
	b.mu.Lock()
	b.bucket.failure(b.counts.Load(cSuccesses))
	b.mu.Unlock()
}

// AllowRetry reports whether one retry may be made now, and counts the
// answer: a retry allowed is counted among the retries (in ratio mode, in
// the window, spending budget), one refused among the exhausted. Call it
// once per retry, just before making it, and make the retry only if it
// returns true. On a nil b it returns true.
//
// In ratio mode it returns true if the retries of the last Window, this one
// included, would number at most Ratio × the (estimated) requests of the
// last Window, + MinRetriesPerSecond × Window if the caller is healthy
// (see [Budget]). In tokens mode it returns
// true if the token count, successes so far included, is above
// MaxTokens/2; it takes no token (failures do).
func (b *Budget) AllowRetry() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	var ok bool
	if b.tokens {
		ok = b.bucket.allow(b.counts.Load(cSuccesses))
	} else {
		ok = b.window.allow(b.counts.Load(cRequests), b.counts.Load(cFailures))
	}
	if ok {
		b.retries++
	} else {
		b.exhausted++
	}
	ev := b.episode(!ok)
	b.mu.Unlock()
	if ev != 0 {
		obs.Emit(&b.slot, obs.Event{Type: ev})
	}
	return ok
}

// episode tracks, for the registry that named b (if one did), the periods
// in which b refuses retries: one begins with a refusal, and ends at the
// first visit (AllowRetry or Metrics) a whole Window after the last
// refusal, so that a budget that allows one retry in ten under a steady
// failure is one episode, not a flicker of them. It returns the event to
// report, or 0. b.mu must be held.
func (b *Budget) episode(refused bool) obs.Type {
	if obs.Bound(&b.slot) == nil {
		return 0
	}
	now := time.Now()
	switch {
	case refused:
		b.lastRefusal = now
		if !b.dry {
			b.dry = true
			return obs.BudgetExhausted
		}
	case b.dry && now.Sub(b.lastRefusal) >= b.quiet():
		b.dry = false
		return obs.BudgetRestored
	}
	return 0
}

// quiet is how long without refusals ends an episode: the Window (the
// default one in tokens mode, which has none).
func (b *Budget) quiet() time.Duration {
	if b.cfg.Window > 0 {
		return b.cfg.Window
	}
	return DefaultBudgetWindow
}

// Mode returns the budget's mode: RatioMode or TokensMode; "" for a nil
// (disabled) budget.
func (b *Budget) Mode() BudgetMode {
	switch {
	case b == nil:
		return ""
	case b.tokens:
		return TokensMode
	}
	return RatioMode
}

// BudgetMetrics is a snapshot of a budget's counters since it was created.
type BudgetMetrics struct {
	// Requests is the number of Request calls.
	Requests uint64 `json:"requests"`
	// Retries is the number of retries allowed by AllowRetry.
	Retries uint64 `json:"retries"`
	// Exhausted is the number of retries refused by AllowRetry.
	Exhausted uint64 `json:"exhausted"`
	// Tokens is, in tokens mode, the current token count; 0 in ratio mode.
	Tokens float64 `json:"tokens"`
}

// Metrics returns a snapshot of b's counters; zeros on a nil b. It takes the
// budget's mutex and, in ratio mode, reads the clock and records a sample
// of the request count, which keeps the window's estimate sharp (see
// [Budget]).
func (b *Budget) Metrics() BudgetMetrics {
	if b == nil {
		return BudgetMetrics{}
	}
	b.mu.Lock()
	m := BudgetMetrics{Retries: b.retries, Exhausted: b.exhausted}
	m.Requests = b.counts.Load(cRequests)
	if b.tokens {
		m.Tokens = b.bucket.tokens(b.counts.Load(cSuccesses))
	} else {
		b.window.visit(b.window.now(), m.Requests, b.counts.Load(cFailures))
	}
	ev := b.episode(false)
	b.mu.Unlock()
	if ev != 0 {
		obs.Emit(&b.slot, obs.Event{Type: ev})
	}
	return m
}

// Registration is how package registry names the budget and hears of its
// running dry and recovering. Its result is opaque outside this module.
func (b *Budget) Registration() *obs.Slot { return &b.slot }
