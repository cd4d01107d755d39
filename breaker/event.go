package breaker

import (
	"fmt"

	"github.com/seawall-go/seawall/internal/obs"
)

// A StateChange is a transition of a breaker from one state to another, as
// reported to [Config.OnStateChange]: which breaker, which states, why, and
// the counts the trip rules judged at that moment, which a transition into
// Closed resets.
type StateChange struct {
	Name  string `json:"name"` // Config.Name; a Group's key
	From  State  `json:"from"`
	To    State  `json:"to"`
	Cause Cause  `json:"cause"`

	// Counts are the closed state's counts when the transition was made:
	// set when From is Closed (a trip rule, or an operator's ForceOpen or
	// Disable), zero otherwise.
	Counts Counts `json:"counts"`
}

// Counts are the counts of a closed breaker that its trip rules judge.
type Counts struct {
	// ConsecutiveFailures is the run of failures in a row, counted when the
	// ConsecutiveFailures rule is set (0 otherwise).
	ConsecutiveFailures uint64 `json:"consecutiveFailures"`
	// Calls, Failures and SlowCalls are the window's counts, kept when a
	// rate rule is set (0 otherwise).
	Calls     uint64 `json:"calls"`
	Failures  uint64 `json:"failures"`
	SlowCalls uint64 `json:"slowCalls"`
}

// A Cause is why a breaker changed state.
type Cause uint8

const (
	// CauseConsecutiveFailures is a trip by the ConsecutiveFailures rule.
	CauseConsecutiveFailures Cause = iota + 1
	// CauseFailureRate is a trip by the FailureRate rule. When a call trips
	// both rate rules, the failure rate is reported.
	CauseFailureRate
	// CauseSlowCallRate is a trip by the SlowCallRate rule.
	CauseSlowCallRate
	// CauseProbeFailed is a half-open probe that failed, re-opening the
	// breaker.
	CauseProbeFailed
	// CauseSlowProbe is a half-open probe that took SlowCallThreshold or
	// longer, re-opening the breaker.
	CauseSlowProbe
	// CauseOpenDurationElapsed is the first call after the open duration,
	// admitted as a probe: the breaker half-opens.
	CauseOpenDurationElapsed
	// CauseProbesSucceeded is the HalfOpenSuccesses-th successful probe,
	// closing the breaker.
	CauseProbesSucceeded
	// CauseForceOpen is an operator's [Breaker.ForceOpen].
	CauseForceOpen
	// CauseDisable is an operator's [Breaker.Disable].
	CauseDisable
	// CauseReset is an operator's [Breaker.Reset].
	CauseReset
)

var causeNames = [...]string{"unknown", "consecutive-failures", "failure-rate", "slow-call-rate",
	"probe-failed", "slow-probe", "open-duration-elapsed", "probes-succeeded",
	"force-open", "disable", "reset"}

// String returns the cause's name, such as "consecutive-failures",
// "failure-rate" or "probe-failed", or "unknown".
func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown"
}

// notify reports c to OnStateChange if it changed the state. It must be
// called outside any lock.
func (b *Breaker) notify(c StateChange) {
	if c.From == c.To {
		return
	}
	c.Name = b.cfg.Name
	if b.cfg.OnStateChange != nil {
		b.cfg.OnStateChange(c)
	}
	if obs.Bound(&b.slot) != nil || b.group != nil && obs.Bound(b.group) != nil {
		e := obs.Event{Type: obs.StateChanged, Detail: c}
		obs.Emit(&b.slot, e)
		if b.group != nil {
			obs.Emit(b.group, e)
		}
	}
}

// MarshalText encodes the cause as its name, so that JSON shows
// "failure-rate".
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes a cause's name.
func (c *Cause) UnmarshalText(b []byte) error {
	for i, n := range causeNames {
		if i > 0 && n == string(b) {
			*c = Cause(i)
			return nil
		}
	}
	return fmt.Errorf("breaker: unknown cause %q", b)
}
