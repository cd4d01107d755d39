package status

import (
	"bytes"
	"encoding/json"
	"sync"
	"time"

	"github.com/seawall-go/seawall/registry"
)

// A History is what GET ./api/history answers: the ring's samples, oldest
// first.
type History struct {
	// Interval is the least time between two samples (in JSON, integer
	// nanoseconds); Size the number of samples kept at most.
	Interval time.Duration `json:"interval"`
	Size     int           `json:"size"`
	Samples  []Sample      `json:"samples"`
}

// A Sample is the counters of every registered policy at one time.
type Sample struct {
	Time     time.Time      `json:"time"`
	Policies []SamplePolicy `json:"policies"` // in the order of their names
}

// A SamplePolicy is one policy's counters in a [Sample], under its name.
type SamplePolicy struct {
	Name string `json:"name"`
	Counters
}

// Counters are the numbers of a policy's snapshot that the page draws over
// time: counters since the policy was made, read as per-second rates
// between samples, and a few gauges. Each kind sets its own; in JSON, the
// fields that are zero are left out.
type Counters struct {
	// A breaker's Metrics, or a breaker group's Total.
	Successes  uint64 `json:"successes,omitempty"`
	Failures   uint64 `json:"failures,omitempty"`
	Rejections uint64 `json:"rejections,omitempty"`
	// A retry's retries, calls given up and retries its budget refused; a
	// budget's retries allowed and refused.
	Retries   uint64 `json:"retries,omitempty"`
	GaveUp    uint64 `json:"gaveUp,omitempty"`
	Exhausted uint64 `json:"exhausted,omitempty"`
	// A bulkhead's or an adaptive limiter's calls admitted and rejected,
	// and its calls in flight now.
	Admitted uint64 `json:"admitted,omitempty"`
	Rejected uint64 `json:"rejected,omitempty"`
	InFlight int    `json:"inFlight,omitempty"`
	// A rate limiter's calls allowed and limited.
	Allowed uint64 `json:"allowed,omitempty"`
	Limited uint64 `json:"limited,omitempty"`
	// A throttle's requests it rejected, those the backend refused, and its
	// rejection probability now.
	Throttled   uint64  `json:"throttled,omitempty"`
	Refused     uint64  `json:"refused,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	// A timeout's calls and those it ended; a fault injector's calls seen
	// while on, errors and delays injected.
	Calls    uint64 `json:"calls,omitempty"`
	TimedOut uint64 `json:"timedOut,omitempty"`
	Errors   uint64 `json:"errors,omitempty"`
	Delays   uint64 `json:"delays,omitempty"`
	// A fallback's calls answered another way, and fallbacks that failed.
	FellBack uint64 `json:"fellBack,omitempty"`
	Failed   uint64 `json:"failed,omitempty"`
	// A hedge's calls (in Calls), hedges started and calls a hedge won.
	Hedges    uint64 `json:"hedges,omitempty"`
	HedgeWins uint64 `json:"hedgeWins,omitempty"`
}

// CountersOf returns the counters of a policy's snapshot.
func CountersOf(p *registry.PolicySnapshot) Counters {
	var c Counters
	switch {
	case p.Breaker != nil:
		c.Successes, c.Failures, c.Rejections = p.Breaker.Successes, p.Breaker.Failures, p.Breaker.Rejections
	case p.BreakerGroup != nil:
		t := &p.BreakerGroup.Total
		c.Successes, c.Failures, c.Rejections = t.Successes, t.Failures, t.Rejections
	case p.Retry != nil:
		c.Retries, c.GaveUp, c.Exhausted = p.Retry.Retries, p.Retry.GaveUp, p.Retry.Budget.Exhausted
	case p.Budget != nil:
		c.Retries, c.Exhausted = p.Budget.Retries, p.Budget.Exhausted
	case p.Bulkhead != nil:
		c.Admitted, c.Rejected, c.InFlight = p.Bulkhead.Admitted, p.Bulkhead.Rejected, p.Bulkhead.InFlight
	case p.Adaptive != nil:
		c.Admitted, c.Rejected, c.InFlight = p.Adaptive.Admitted, p.Adaptive.Rejected, p.Adaptive.InFlight
	case p.RateLimit != nil:
		c.Allowed, c.Limited = p.RateLimit.Allowed, p.RateLimit.Limited
	case p.Throttle != nil:
		c.Throttled, c.Refused, c.Probability = p.Throttle.Throttled, p.Throttle.Refused, p.Throttle.Probability
	case p.Timeout != nil:
		c.Calls, c.TimedOut = p.Timeout.Calls, p.Timeout.TimedOut
	case p.Fallback != nil:
		c.FellBack, c.Failed = p.Fallback.FellBack, p.Fallback.Failed
	case p.Hedge != nil:
		c.Calls, c.Hedges, c.HedgeWins = p.Hedge.Calls, p.Hedge.Hedges, p.Hedge.HedgeWins
	case p.Fault != nil:
		c.Calls, c.Errors, c.Delays = p.Fault.Calls, p.Fault.Errors, p.Fault.Delays
	}
	return c
}

// history is the ring of recent samples.
type history struct {
	every time.Duration

	mu   sync.Mutex
	ring []Sample // len = size; ring[next] is the oldest once full
	next int
	n    int       // samples held
	last time.Time // when the last sample was taken
}

func newHistory(size int, every time.Duration) history {
	return history{every: every, ring: make([]Sample, size)}
}

// due reports whether a sample taken at now would be kept. h.mu must be
// held.
func (h *history) dueLocked(now time.Time) bool {
	return len(h.ring) > 0 && (h.n == 0 || now.Sub(h.last) >= h.every)
}

// maybeSample takes a sample of reg if one is due.
func (h *history) maybeSample(reg *registry.Registry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dueLocked(time.Now()) {
		return
	}
	s := reg.Snapshot()
	h.appendLocked(&s)
}

// record keeps s as a sample if one is due at its time.
func (h *history) record(s *registry.Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dueLocked(s.Time) {
		h.appendLocked(s)
	}
}

// appendLocked adds s to the ring, over the oldest sample once the ring is
// full, reusing its memory. h.mu must be held.
func (h *history) appendLocked(s *registry.Snapshot) {
	slot := &h.ring[h.next]
	slot.Time = s.Time
	ps := slot.Policies[:0]
	if ps == nil {
		ps = []SamplePolicy{} // [] in JSON, not null, for an empty registry
	}
	for i := range s.Policies {
		p := &s.Policies[i]
		ps = append(ps, SamplePolicy{Name: p.Name, Counters: CountersOf(p)})
	}
	slot.Policies = ps
	h.next = (h.next + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
	h.last = s.Time
}

// encode writes the history as JSON to buf.
func (h *history) encode(buf *bytes.Buffer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := History{Interval: h.every, Size: len(h.ring), Samples: make([]Sample, 0, h.n)}
	start := (h.next - h.n + len(h.ring)) % max(len(h.ring), 1)
	for i := range h.n {
		out.Samples = append(out.Samples, h.ring[(start+i)%len(h.ring)])
	}
	// Encoding a struct of strings, numbers and times cannot fail.
	_ = json.NewEncoder(buf).Encode(out)
}
