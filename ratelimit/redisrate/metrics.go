package redisrate

import (
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/ratelimit"
)

// Metrics is a snapshot of a limiter's counters since it was created.
type Metrics struct {
	// Admitted is the number of calls granted their tokens, by Redis or by
	// the fallback; Rejected the number refused, whatever refused them
	// (the shared limit, the local share, FailClosed, a bad key, n over
	// the burst).
	Admitted uint64 `json:"admitted"`
	Rejected uint64 `json:"rejected"`

	// Fallback counts the decisions taken without Redis, by mode.
	Fallback FallbackMetrics `json:"fallback"`

	// RedisErrors is the number of calls to Redis that failed, Timeouts
	// included: each was then decided by the fallback. Calls the breaker
	// kept from Redis are not errors.
	RedisErrors uint64 `json:"redisErrors"`
	// Timeouts is the number of calls to Redis that did not finish within
	// Config.Timeout.
	Timeouts uint64 `json:"timeouts"`
	// ScriptLoads is the number of times Redis answered NOSCRIPT (it had
	// lost the script: a restart, a failover, SCRIPT FLUSH) and the
	// limiter sent the script in full.
	ScriptLoads uint64 `json:"scriptLoads"`

	// Breaker is the state of the breaker in front of Redis: Closed while
	// Redis answers, Open while every decision goes to the fallback.
	Breaker breaker.State `json:"breaker"`

	// RoundTrip is the distribution of the time calls to Redis took, from
	// sending to the answer or the error, NOSCRIPT reloads included.
	RoundTrip Histogram `json:"roundTrip"`
}

// FallbackMetrics counts the decisions taken without Redis (its breaker
// open, or the call failed), by mode.
type FallbackMetrics struct {
	// LocalAdmitted and LocalRejected are FallbackLocal's decisions, by
	// the local share of the limit.
	LocalAdmitted uint64 `json:"localAdmitted"`
	LocalRejected uint64 `json:"localRejected"`
	// Closed is the number of events FailClosed refused; Open the number
	// FailOpen admitted.
	Closed uint64 `json:"closed"`
	Open   uint64 `json:"open"`
}

// Histogram is a distribution of durations, as bucket counts.
type Histogram struct {
	// Bounds are the buckets' upper bounds, inclusive, increasing.
	Bounds []time.Duration `json:"bounds"`
	// Counts has one count per bound, and one more last for the durations
	// above the last bound: Counts[i] is the number of durations d with
	// Bounds[i-1] < d ≤ Bounds[i].
	Counts []uint64 `json:"counts"`
}

// Total returns the number of durations in h.
func (h Histogram) Total() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// rttBounds are the round-trip histogram's bounds: a loopback Redis
// answers in tens of microseconds, a LAN one in hundreds, and Config.Timeout
// is at most a second.
var rttBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second,
}

// counter is a counter on a cache line of its own: the fallback path of
// every goroutine writes the same few, and sharing a line would make each
// write evict the others'.
type counter struct {
	atomic.Uint64
	_ [56]byte
}

// stats are a limiter's counters. Those of the Redis path share lines:
// its round trip dwarfs any contention. FallbackLocal's decisions are
// counted by the local limiter, in its per-P counters.
type stats struct {
	redisAdmitted, redisRejected counter
	closed, open, invalid        counter
	errors, timeouts, loads      atomic.Uint64
	rtt                          [len(rttBounds) + 1]atomic.Uint64
}

func (s *stats) add(c *atomic.Uint64) { c.Add(1) }

func (s *stats) observe(d time.Duration) {
	i := 0
	for i < len(rttBounds) && d > rttBounds[i] {
		i++
	}
	s.rtt[i].Add(1)
}

func (s *stats) snapshot(br *breaker.Breaker, local ratelimit.Metrics) Metrics {
	m := Metrics{
		Fallback: FallbackMetrics{
			LocalAdmitted: local.Allowed,
			LocalRejected: local.Limited,
			Closed:        s.closed.Load(),
			Open:          s.open.Load(),
		},
		RedisErrors: s.errors.Load(),
		Timeouts:    s.timeouts.Load(),
		ScriptLoads: s.loads.Load(),
		Breaker:     br.State(),
		RoundTrip:   Histogram{Bounds: append([]time.Duration(nil), rttBounds[:]...), Counts: make([]uint64, len(s.rtt))},
	}
	m.Admitted = s.redisAdmitted.Load() + m.Fallback.LocalAdmitted + m.Fallback.Open
	m.Rejected = s.redisRejected.Load() + m.Fallback.LocalRejected + m.Fallback.Closed + s.invalid.Load()
	for i := range s.rtt {
		m.RoundTrip.Counts[i] = s.rtt[i].Load()
	}
	return m
}
