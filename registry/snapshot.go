package registry

import (
	"time"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fallback"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
	"github.com/seawall-go/seawall/timeout"
)

// A Snapshot is every registered policy's state and counters at one time,
// as the status page shows them and serves them as JSON.
type Snapshot struct {
	Time     time.Time        `json:"time"`
	Policies []PolicySnapshot `json:"policies"` // in the order of their names
}

// A PolicySnapshot is one policy's snapshot: its name, its kind, and the
// Metrics of its type, in the one field its kind sets.
type PolicySnapshot struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`

	Breaker      *breaker.Metrics      `json:"breaker,omitempty"`
	BreakerGroup *breaker.GroupMetrics `json:"breakerGroup,omitempty"`
	Retry        *retry.Metrics        `json:"retry,omitempty"`
	Budget       *retry.BudgetMetrics  `json:"budget,omitempty"`
	Bulkhead     *bulkhead.Metrics     `json:"bulkhead,omitempty"`
	Adaptive     *adaptive.Metrics     `json:"adaptive,omitempty"`
	RateLimit    *RateLimitMetrics     `json:"rateLimit,omitempty"` // KindRateLimit and KindKeyedLimit
	Throttle     *throttle.Metrics     `json:"throttle,omitempty"`
	Fault        *fault.Metrics        `json:"fault,omitempty"`
	Timeout      *timeout.Metrics      `json:"timeout,omitempty"`
	Fallback     *fallback.Metrics     `json:"fallback,omitempty"`
	Hedge        *hedge.Metrics        `json:"hedge,omitempty"`
}

// RateLimitMetrics is a rate limiter's snapshot: its counters, its rate and
// burst, and for a keyed limiter the number of keys it remembers.
type RateLimitMetrics struct {
	ratelimit.Metrics
	Rate  float64 `json:"rate"` // tokens per second
	Burst int     `json:"burst"`
	Keys  int     `json:"keys,omitempty"` // KindKeyedLimit: keys remembered

	// Shared is set for a SharedLimiter: a limit shared through a store.
	// Allowed and Limited then count every decision, the store's and the
	// fallback's.
	Shared *SharedStore `json:"shared,omitempty"`
}

// SharedLimitMetrics is the snapshot of a [SharedLimiter].
type SharedLimitMetrics struct {
	RateLimitMetrics
	Keyed bool `json:"-"` // one bucket per key
}

// SharedStore is what a SharedLimiter's snapshot says of its store.
type SharedStore struct {
	Store string `json:"store"` // "redis"
	// Fallback is what the limiter does while the store is unavailable:
	// "local" (this instance's share of the limit), "fail-closed",
	// "fail-open".
	Fallback string `json:"fallback"`
	// Breaker is the state of the breaker in front of the store: open
	// while every decision is the fallback's.
	Breaker breaker.State `json:"breaker"`
	// FallbackAllowed and FallbackLimited count the decisions taken
	// without the store, included in Allowed and Limited.
	FallbackAllowed uint64 `json:"fallbackAllowed"`
	FallbackLimited uint64 `json:"fallbackLimited"`
	// Errors counts the calls to the store that failed (Timeouts among
	// them), each decided by the fallback.
	Errors   uint64 `json:"errors"`
	Timeouts uint64 `json:"timeouts"`
}

// Snapshot takes every registered policy's snapshot, reading its Metrics.
// Policies keep running meanwhile: each snapshot is true at the moment it
// was read, not all at the same instant.
func (r *Registry) Snapshot() Snapshot {
	list := *r.list.Load()
	s := Snapshot{Time: time.Now(), Policies: make([]PolicySnapshot, 0, len(list))}
	for _, e := range list {
		s.Policies = append(s.Policies, Take(e.Policy))
	}
	return s
}

// Take returns the snapshot of one policy.
func Take(p Policy) PolicySnapshot {
	ps := PolicySnapshot{Name: p.Name, Kind: p.Kind}
	switch v := p.Value.(type) {
	case *breaker.Breaker:
		m := v.Metrics()
		ps.Breaker = &m
	case *breaker.Group:
		m := v.Metrics()
		ps.BreakerGroup = &m
	case *retry.Retry:
		m := v.Metrics()
		ps.Retry = &m
	case *retry.Budget:
		m := v.Metrics()
		ps.Budget = &m
	case *bulkhead.Bulkhead:
		m := v.Metrics()
		ps.Bulkhead = &m
	case *adaptive.Limiter:
		m := v.Metrics()
		ps.Adaptive = &m
	case *ratelimit.Limiter:
		ps.RateLimit = &RateLimitMetrics{Metrics: v.Metrics(), Rate: v.Rate(), Burst: v.Burst()}
	case *ratelimit.Keyed:
		ps.RateLimit = &RateLimitMetrics{Metrics: v.Metrics(), Rate: v.Rate(), Burst: v.Burst(), Keys: v.Len()}
	case *throttle.Throttle:
		m := v.Metrics()
		ps.Throttle = &m
	case *fault.Injector:
		m := v.Metrics()
		ps.Fault = &m
	case *timeout.Timeout:
		m := v.Metrics()
		ps.Timeout = &m
	case *hedge.Hedge:
		m := v.Metrics()
		ps.Hedge = &m
	case fallback.Metered:
		m := v.Metrics()
		ps.Fallback = &m
	case SharedLimiter:
		m := v.SharedLimitMetrics().RateLimitMetrics
		ps.RateLimit = &m
	}
	return ps
}
