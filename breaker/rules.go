package breaker

// Recording outcomes and the trip rules: consecutive failures, and the
// failure and slow-call rates over a window (window.go).

import (
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
		now = b.now()
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
		b.recordProbe(p, failed || slow)
		return
	case Disabled:
		return
	}
	if b.state.Load() != p.word {
		return // issued before a transition
	}
	trip := false
	if failed {
		trip = b.cfg.ConsecutiveFailures > 0 && b.consec.Add(1) >= int64(b.cfg.ConsecutiveFailures)
	} else if b.consec.Load() != 0 {
		b.consec.Store(0)
	}
	if !trip && b.rateRules {
		b.mu.Lock()
		if b.state.Load() == p.word {
			trip = b.rateTrips(b.windowRecord(now, failed, slow))
		}
		b.mu.Unlock()
	}
	if trip && b.transition(p.word, pack(Open, 0, 0, genOf(p.word)+1)) {
		b.notify(Closed, Open)
	}
}

// rateTrips reports whether a window's counts trip a rate rule.
func (b *Breaker) rateTrips(calls, failures, slow uint64) bool {
	if calls == 0 || calls < uint64(b.cfg.MinimumCalls) {
		return false
	}
	n := float64(calls)
	return b.cfg.FailureRate > 0 && float64(failures)/n >= b.cfg.FailureRate ||
		b.cfg.SlowCallRate > 0 && float64(slow)/n >= b.cfg.SlowCallRate
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
