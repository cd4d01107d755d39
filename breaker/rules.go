package breaker

// Recording outcomes and the trip rules: consecutive failures, and the
// failure and slow-call rates over a window (window.go).

import (
	"time"

	"github.com/seawall-go/seawall/internal/shard"
)

// fastSuccess counts a success admitted in the current state, closed or
// disabled: the hot path.
func (b *Breaker) fastSuccess() {
	i := shard.Pin()
	b.counts.AddPinned(i, cSuccess)
	shard.Unpin()
	if b.consec.Load() != 0 {
		b.consec.Store(0)
	}
}

func (b *Breaker) record(p Permit, o Outcome) {
	var now int64
	slow := false
	if b.readEnd {
		var ok bool
		if now, ok = b.coarse(); !ok { // b.now(), written out (see coarse)
			now = max(int64(time.Since(b.epoch)), 0)
		}
		slow = b.slowNs > 0 && now-p.start >= b.slowNs
	}
	if o == Ignore {
		b.counts.Add(cIgnored)
		if stateOf(p.word) == HalfOpen {
			b.releaseProbe(p)
		}
		return
	}
	failed := o != Success
	if failed || slow || stateOf(p.word) == HalfOpen {
		b.recordSlow(p, failed, slow, now)
		return
	}
	b.countSuccess(p, now)
}

// countSuccess counts a fast success (closed or disabled) at time now.
func (b *Breaker) countSuccess(p Permit, now int64) {
	if b.state.Load() != p.word {
		// Issued before a transition: count it, but not in the new window.
		b.otherSuccesses.Add(1)
		return
	}
	if b.tw != nil {
		b.tw.add(now)
	}
	b.fastSuccess()
}

// recordSlow records a failure, a slow call or a probe's outcome.
func (b *Breaker) recordSlow(p Permit, failed, slow bool, now int64) {
	if failed {
		b.counts.Add(cFailed)
	} else {
		b.otherSuccesses.Add(1)
	}
	if slow {
		b.slowCalls.Add(1)
	}
	switch stateOf(p.word) {
	case HalfOpen:
		b.recordProbe(p, failed, slow)
		return
	case Disabled:
		return
	}
	if b.state.Load() != p.word {
		return // issued before a transition
	}
	var c Counts
	var cause Cause // 0 while no rule trips
	if failed {
		if b.cfg.ConsecutiveFailures > 0 {
			n := b.consec.Add(1)
			c.ConsecutiveFailures = uint64(max(n, 0))
			if n >= int64(b.cfg.ConsecutiveFailures) {
				cause = CauseConsecutiveFailures
			}
		}
	} else if b.consec.Load() != 0 {
		b.consec.Store(0)
	}
	if b.rateRules {
		// Recorded even when the consecutive rule tripped, so that the
		// reported counts include this call.
		b.mu.Lock()
		if b.state.Load() == p.word {
			c.Calls, c.Failures, c.SlowCalls = b.windowRecord(now, failed, slow)
			if cause == 0 {
				cause = b.rateTrips(c)
			}
		}
		b.mu.Unlock()
	}
	if cause != 0 && b.transition(p.word, pack(Open, 0, 0, genOf(p.word)+1)) {
		b.notify(StateChange{From: Closed, To: Open, Cause: cause, Counts: c})
	}
}

// rateTrips returns the rate rule a window's counts trip, or 0.
func (b *Breaker) rateTrips(c Counts) Cause {
	if c.Calls == 0 || c.Calls < uint64(b.cfg.MinimumCalls) {
		return 0
	}
	n := float64(c.Calls)
	switch {
	case b.cfg.FailureRate > 0 && float64(c.Failures)/n >= b.cfg.FailureRate:
		return CauseFailureRate
	case b.cfg.SlowCallRate > 0 && float64(c.SlowCalls)/n >= b.cfg.SlowCallRate:
		return CauseSlowCallRate
	}
	return 0
}

// closedCounts returns the counts of the closed state. b.mu must be held.
func (b *Breaker) closedCounts() Counts {
	c := Counts{ConsecutiveFailures: uint64(max(b.consec.Load(), 0))}
	switch {
	case !b.rateRules:
	case b.tw != nil:
		c.Calls, c.Failures, c.SlowCalls = b.tw.counts(b.now())
	default:
		c.Calls, c.Failures, c.SlowCalls = b.cw.counts(b.fastSuccesses())
	}
	return c
}

// windowRecord adds a failure or slow call to the window and returns the
// window's calls, failures and slow calls. b.mu must be held.
func (b *Breaker) windowRecord(now int64, failed, slow bool) (calls, failures, slowCalls uint64) {
	if b.tw != nil {
		return b.tw.record(now, failed, slow)
	}
	return b.cw.record(b.fastSuccesses(), failed, slow)
}

func (b *Breaker) fastSuccesses() uint64 { return b.counts.Load(cSuccess) }
