package storm

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// A Strategy is how the callers (and, for [ServerSide] and [Adaptive], the
// account service) handle failures. The strategies (a) to (f) are
// cumulative from [Backoff] on: each adds one defence to the one before
// it. (g) is seawall with no hand-sized limit anywhere: (e)'s callers with
// a client-side throttle each, and an adaptive concurrency limit at the
// service in place of (f)'s fixed limiter and bulkhead.
type Strategy int

// The strategies, (a) to (g).
const (
	NoRetry    Strategy = iota // (a) one attempt per request
	Naive                      // (b) retries at once, up to MaxAttempts attempts
	Backoff                    // (c) retries after exponential delays with full jitter
	Budget                     // (d) (c) + a seawall retry budget per caller
	Breaker                    // (e) (d) + a seawall circuit breaker per caller
	ServerSide                 // (f) (e) + a limiter and a bulkhead at the service, which drops abandoned requests
	Adaptive                   // (g) (e) + a throttle per caller, and an adaptive concurrency limit at the service, which drops abandoned requests
	NumStrategies
)

// AllStrategies lists every strategy, in order.
var AllStrategies = []Strategy{NoRetry, Naive, Backoff, Budget, Breaker, ServerSide, Adaptive}

var strategyNames = [NumStrategies]string{
	"no retries", "naive retries", "backoff + jitter", "+ retry budget", "+ circuit breaker", "+ server-side", "adaptive, no limits",
}

// Letter returns the strategy's letter, "a" to "g".
func (s Strategy) Letter() string {
	if s < 0 || s >= NumStrategies {
		return "?"
	}
	return string(rune('a' + s))
}

// String returns the strategy's letter and short name, e.g. "d + retry budget".
func (s Strategy) String() string {
	if s < 0 || s >= NumStrategies {
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
	return s.Letter() + " " + strategyNames[s]
}

// What each strategy has.
func (s Strategy) budgeted() bool  { return s >= Budget }     // a retry budget per caller
func (s Strategy) breaks() bool    { return s >= Breaker }    // a circuit breaker per caller
func (s Strategy) throttles() bool { return s == Adaptive }   // a client-side throttle per caller
func (s Strategy) protected() bool { return s >= ServerSide } // protection at the service, which drops abandoned requests

// MarshalText encodes a strategy as its letter.
func (s Strategy) MarshalText() ([]byte, error) { return []byte(s.Letter()), nil }

// UnmarshalText decodes a strategy's letter.
func (s *Strategy) UnmarshalText(b []byte) error {
	if len(b) != 1 || b[0] < 'a' || b[0] >= 'a'+byte(NumStrategies) {
		return fmt.Errorf("strategy %q unknown; want a letter a to g", b)
	}
	*s = Strategy(b[0] - 'a')
	return nil
}

// ParseStrategies parses a comma-separated list of strategy letters
// ("a,b,f", or "abf"), or "all".
func ParseStrategies(list string) ([]Strategy, error) {
	if list == "all" {
		return AllStrategies, nil
	}
	var out []Strategy
	seen := map[Strategy]bool{}
	for _, r := range strings.ReplaceAll(strings.ReplaceAll(list, ",", ""), " ", "") {
		s := Strategy(r - 'a')
		if s < 0 || s >= NumStrategies {
			return nil, fmt.Errorf("strategy %q unknown; want letters a to g, or all", r)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no strategy in %q", list)
	}
	return out, nil
}

// A Trigger is what happens during the trigger window.
type Trigger string

// The triggers.
const (
	// Spike multiplies the request rate by Factor.
	Spike Trigger = "spike"
	// Slowdown divides the service's capacity by Factor: every request
	// started in the window takes Factor times longer.
	Slowdown Trigger = "slowdown"
	// None changes nothing: the baseline, where every strategy should
	// succeed.
	None Trigger = "none"
)

// A Scenario is one run of the demo. Its times are scenario times: the run
// goes Speed times faster than that on the real clock (the time package's:
// a testing/synctest bubble runs it in virtual time).
type Scenario struct {
	// The account service.
	Workers     int           // requests served at once
	ServiceTime time.Duration // mean service time, exponentially distributed

	// The load: open-loop Poisson arrivals from Callers caller instances
	// that share Rate equally; each has its own retry policy, retry budget
	// and circuit breaker.
	Callers int
	Rate    float64 // requests per second, all callers together

	// The trigger: from TriggerAt (the end of the warm-up) for TriggerFor,
	// the load is multiplied (Spike) or the capacity divided (Slowdown) by
	// Factor. The run sends requests until Length, then waits for the last
	// ones to end.
	Trigger    Trigger
	Factor     float64
	TriggerAt  time.Duration
	TriggerFor time.Duration
	Length     time.Duration

	// Each request: a deadline, attempts with a timeout each, at most
	// MaxAttempts attempts (the first included) for the strategies that
	// retry.
	Deadline       time.Duration
	AttemptTimeout time.Duration
	MaxAttempts    int

	Seed  uint64  // seeds the arrivals and the service times
	Speed float64 // how many times faster than real time the run goes; 1 in a synctest bubble

	// Slack, for runs on the real clock, is how late (in real time) a job
	// may reach a worker that has just finished one and still start when
	// the worker became free: real timers fire up to about 1ms late on
	// Linux, and each goroutine hand-off adds some more, time that would
	// otherwise be lost to the service at every hand-off. 0 in a synctest
	// bubble, where neither takes any time.
	Slack time.Duration

	Policies Policies

	// HTTP runs each strategy's service as a loopback HTTP server and its
	// callers as HTTP clients (see the package doc, "Over HTTP"), on the
	// real clock: not in a testing/synctest bubble, which real sockets
	// would hang.
	HTTP bool `json:"http,omitempty"`

	// Registry, if set, is where each strategy's run registers its
	// policies while it runs, so that a status page or telemetry can
	// watch the storm: named after the strategy's letter, "e.caller-3.retry"
	// (with its budget, "e.caller-3.retry.budget"), "e.caller-3.breaker",
	// "g.caller-3.throttle", "f.service.limiter", "f.service.bulkhead",
	// "g.service.adaptive". Over HTTP each caller's httpmw.Transport
	// registers its own (httpmw.WithRegistry): "e.caller-3.retry",
	// "e.caller-3.breakers" (a group, keyed by host), "g.caller-3.throttle".
	// The run unregisters them when it ends.
	Registry *registry.Registry `json:"-"`

	// inMemory, if set, is the network of a run over HTTP: a listener for
	// the server and a dialer for the clients (tests set an in-memory one,
	// so that a run over HTTP takes place in a synctest bubble).
	inMemory func() (net.Listener, func(context.Context, string, string) (net.Conn, error))
}

// Policies are the seawall configurations the strategies use, in scenario
// time (a run scales them by its Speed). The limits of (f) left zero are
// derived from the service ([Scenario.Derived]): nothing in the demo is
// sized by hand for one service.
type Policies struct {
	// Delay is the backoff of (c) to (g): the first retry waits a random
	// time in [0, Delay], each further one up to twice as long as the one
	// before (full jitter).
	Delay time.Duration
	// Budget is the retry budget of (d) to (g), one per caller instance.
	Budget retry.BudgetConfig
	// Breaker is the circuit breaker of (e) to (g), one per caller
	// instance.
	Breaker breaker.Config
	// Bulkhead and Limiter protect the service in (f): the limiter sheds
	// the requests above its rate at once, the bulkhead lets Workers
	// requests in and a few wait briefly. Zero fields are derived from the
	// service: the limiter's rate is its capacity and its burst the
	// bulkhead's room (MaxConcurrent + MaxWaiting); the bulkhead has a
	// slot per worker, as many places to wait, and MaxWait 5 mean service
	// times.
	Bulkhead bulkhead.Config
	Limiter  ratelimit.Config
	// FullHint is the retry-after hint the service sends with a bulkhead
	// rejection (bulkhead.ErrFull carries none); the limiter's rejections
	// carry their own, exact hint. Zero: the bulkhead's MaxWait.
	FullHint time.Duration
	// Throttle is the client-side throttle of (g), one per caller
	// instance; Adaptive is the service's adaptive concurrency limit in
	// (g). The demo uses their defaults: zero values.
	Throttle throttle.Config
	Adaptive adaptive.Config
}

// Default returns the default scenario: a load spike of 2× for 5s after a
// 10s warm-up, then 20s more, run in real time (Speed 1).
func Default() Scenario {
	return Scenario{
		Workers:        10,
		ServiceTime:    10 * time.Millisecond,
		Callers:        8,
		Rate:           700,
		Trigger:        Spike,
		Factor:         2,
		TriggerAt:      10 * time.Second,
		TriggerFor:     5 * time.Second,
		Length:         35 * time.Second,
		Deadline:       time.Second,
		AttemptTimeout: 100 * time.Millisecond,
		MaxAttempts:    4,
		Seed:           1,
		Speed:          1,
		Policies: Policies{
			Delay: 100 * time.Millisecond,
			// The default budget: 10% of the requests of the last 5s + 1
			// retry/s.
			Budget: retry.BudgetConfig{},
			// A time window, so that each caller's breaker judges the
			// last second whatever its rate: a count window of 50 calls
			// is 0.6s of one of 8 callers' traffic, but 35s of one of
			// 512's, which then trips seconds late.
			Breaker: breaker.Config{
				FailureRate:  0.5,
				TimeWindow:   time.Second,
				MinimumCalls: 5,
				OpenDuration: 500 * time.Millisecond,
			},
		},
	}
}

// Derived returns s's policies with the limits of (f) that are zero
// derived from the service, as [Policies] describes.
func (s Scenario) Derived() Policies {
	p := s.Policies
	if p.Bulkhead.MaxConcurrent == 0 {
		p.Bulkhead.MaxConcurrent = s.Workers
	}
	if p.Bulkhead.MaxWaiting == 0 {
		p.Bulkhead.MaxWaiting = s.Workers
	}
	if p.Bulkhead.MaxWait == 0 {
		p.Bulkhead.MaxWait = 5 * s.ServiceTime
	}
	if p.Limiter.Rate == 0 {
		p.Limiter.Rate = s.Capacity()
	}
	if p.Limiter.Burst == 0 {
		p.Limiter.Burst = p.Bulkhead.MaxConcurrent + p.Bulkhead.MaxWaiting
	}
	if p.FullHint == 0 {
		p.FullHint = p.Bulkhead.MaxWait
	}
	return p
}

// Capacity returns the service's nominal capacity in requests per second.
func (s Scenario) Capacity() float64 {
	return float64(s.Workers) / s.ServiceTime.Seconds()
}

// TriggerCapacity returns the service's capacity during the trigger
// window: Capacity, divided by Factor for a Slowdown.
func (s Scenario) TriggerCapacity() float64 {
	if s.Trigger == Slowdown {
		return s.Capacity() / s.Factor
	}
	return s.Capacity()
}

// Offered returns the load offered during the trigger window, in requests
// per second: Rate, multiplied by Factor for a Spike.
func (s Scenario) Offered() float64 {
	if s.Trigger == Spike {
		return s.Rate * s.Factor
	}
	return s.Rate
}

// Achievable returns the goodput achievable during the trigger window:
// the capacity then ([Scenario.TriggerCapacity]) or the load offered,
// whichever is less.
func (s Scenario) Achievable() float64 { return min(s.TriggerCapacity(), s.Offered()) }

// TriggerEnd returns the end of the trigger window.
func (s Scenario) TriggerEnd() time.Duration { return s.TriggerAt + s.TriggerFor }

// Validate reports the first invalid field of s.
func (s Scenario) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("scenario: %s %v %s", field, v, want)
	}
	switch {
	case s.Workers < 1 || s.Workers > 10000:
		return bad("Workers", s.Workers, "out of range [1,10000]")
	case s.ServiceTime <= 0:
		return bad("ServiceTime", s.ServiceTime, "must be positive")
	case s.Callers < 1 || s.Callers > 1000:
		return bad("Callers", s.Callers, "out of range [1,1000]")
	case !(s.Rate > 0 && s.Rate <= 1e6):
		return bad("Rate", s.Rate, "out of range (0,1e6]")
	case s.Trigger != Spike && s.Trigger != Slowdown && s.Trigger != None:
		return fmt.Errorf("scenario: Trigger %q unknown; want %q, %q or %q", s.Trigger, Spike, Slowdown, None)
	case !(s.Factor >= 1 && s.Factor <= 100):
		return bad("Factor", s.Factor, "out of range [1,100]")
	case s.TriggerAt < 0 || s.TriggerFor < 0:
		return fmt.Errorf("scenario: TriggerAt %v and TriggerFor %v must not be negative", s.TriggerAt, s.TriggerFor)
	case s.Length <= 0 || s.Length > time.Hour:
		return bad("Length", s.Length, "out of range (0,1h]")
	case s.TriggerEnd() > s.Length:
		return fmt.Errorf("scenario: the trigger ends at %v, after Length %v", s.TriggerEnd(), s.Length)
	case s.Deadline <= 0 || s.AttemptTimeout <= 0:
		return fmt.Errorf("scenario: Deadline %v and AttemptTimeout %v must be positive", s.Deadline, s.AttemptTimeout)
	case s.MaxAttempts < 1 || s.MaxAttempts > 100:
		return bad("MaxAttempts", s.MaxAttempts, "out of range [1,100]")
	case !(s.Speed >= 0.01 && s.Speed <= 100):
		return bad("Speed", s.Speed, "out of range [0.01,100]")
	case s.Slack < 0 || s.Slack > 10*time.Millisecond:
		return bad("Slack", s.Slack, "out of range [0,10ms]")
	case s.Policies.Delay <= 0:
		return bad("Policies.Delay", s.Policies.Delay, "must be positive")
	case s.Policies.FullHint < 0:
		return bad("Policies.FullHint", s.Policies.FullHint, "is negative")
	case math.IsInf(s.Policies.Limiter.Rate, 0):
		return bad("Policies.Limiter.Rate", s.Policies.Limiter.Rate, "must be finite")
	}
	return nil
}
