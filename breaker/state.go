package breaker

// The state machine: the packed state word, admission outside the closed
// fast path, half-open probes, transitions and open periods.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/seawall-go/seawall"
)

// State is the state of a breaker.
type State uint8

const (
	// Closed admits every call and measures outcomes.
	Closed State = iota
	// Open rejects every call until the open duration has passed.
	Open
	// HalfOpen admits a limited number of probes; enough successful probes
	// close the breaker, one failed probe re-opens it.
	HalfOpen
	// ForcedOpen rejects every call until Reset: an operator override.
	ForcedOpen
	// Disabled admits every call and keeps counting outcomes, but never
	// trips, until Reset: an operator override.
	Disabled
)

const numStates = 5

var stateNames = [numStates]string{"closed", "open", "half-open", "forced-open", "disabled"}

// MarshalText encodes the state as its name, so that JSON shows "open".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("breaker: unknown state %q", b)
}

// String returns the state's name: "closed", "open", "half-open",
// "forced-open" or "disabled".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// The state word packs, from the low bits: the state (3 bits), the probes in
// flight and the successful probes of the half-open state (16 bits each), and
// a generation (29 bits) that every transition increments, so a permit can
// tell whether the state it was issued in still holds.
const (
	stateBits     = 3
	probeBits     = 16
	inflightShift = stateBits
	succShift     = stateBits + probeBits
	genShift      = stateBits + 2*probeBits
	stateMask     = 1<<stateBits - 1
	probeMask     = 1<<probeBits - 1
)

func pack(st State, inflight, succ uint64, gen uint64) uint64 {
	return gen<<genShift | succ<<succShift | inflight<<inflightShift | uint64(st)
}

func stateOf(w uint64) State     { return State(w & stateMask) }
func genOf(w uint64) uint64      { return w >> genShift }
func inflightOf(w uint64) uint64 { return w >> inflightShift & probeMask }
func succOf(w uint64) uint64     { return w >> succShift & probeMask }

// allowSlow is Allow for every state word the fast path does not admit: it
// half-opens an open breaker whose period has passed, hands out probe slots,
// and refuses the rest.
func (b *Breaker) allowSlow() (Permit, error) {
	for {
		w := b.state.Load()
		switch stateOf(w) {
		case Closed, Disabled:
			p := Permit{b: b, word: w}
			if b.readStart {
				var ok bool
				if p.start, ok = b.coarse(); !ok { // b.now(), written out (see coarse)
					p.start = max(int64(time.Since(b.epoch)), 0)
				}
			}
			return p, nil
		case Open:
			oe := b.open.Load()
			if oe == nil || oe.gen != genOf(w) {
				// The trip that opened it has not published its period yet.
				return b.reject(ErrOpen)
			}
			now := b.now()
			if now < oe.until {
				return b.reject(oe)
			}
			half := pack(HalfOpen, 1, 0, genOf(w)+1)
			if b.transition(w, half) {
				b.notify(StateChange{From: Open, To: HalfOpen, Cause: CauseOpenDurationElapsed})
				return Permit{b: b, word: pack(HalfOpen, 0, 0, genOf(half)), start: now}, nil
			}
		case HalfOpen:
			if inflightOf(w) >= uint64(b.cfg.HalfOpenProbes) {
				// The open period this half-open period follows is published
				// before the transition into it, and replaced only after the
				// transition out of it: if it does not match, w is stale.
				if oe := b.open.Load(); oe != nil && oe.gen+1 == genOf(w) {
					return b.reject(&oe.probing)
				}
				if b.state.Load() == w {
					return b.reject(ErrOpen) // unreachable, but never spin
				}
				continue
			}
			if b.state.CompareAndSwap(w, w+1<<inflightShift) {
				p := Permit{b: b, word: pack(HalfOpen, 0, 0, genOf(w))}
				if b.readStart {
					p.start = b.now()
				}
				return p, nil
			}
		default: // ForcedOpen
			return b.reject(ErrOpen)
		}
	}
}

// reject counts a refused call and returns err.
func (b *Breaker) reject(err error) (Permit, error) {
	b.counts.Add(cRejected)
	return Permit{}, err
}

// recordProbe records a half-open probe's outcome: a failed or slow probe
// re-opens the breaker, enough successes close it.
func (b *Breaker) recordProbe(p Permit, failed, slow bool) {
	for {
		w := b.state.Load()
		if stateOf(w) != HalfOpen || genOf(w) != genOf(p.word) {
			return // issued before a transition
		}
		if failed || slow {
			if b.transition(w, pack(Open, 0, 0, genOf(w)+1)) {
				cause := CauseProbeFailed
				if !failed {
					cause = CauseSlowProbe
				}
				b.notify(StateChange{From: HalfOpen, To: Open, Cause: cause})
				return
			}
			continue
		}
		succ := succOf(w) + 1
		if succ >= uint64(b.cfg.HalfOpenSuccesses) {
			b.mu.Lock()
			ok := b.transition(w, pack(Closed, 0, 0, genOf(w)+1))
			b.mu.Unlock()
			if ok {
				b.notify(StateChange{From: HalfOpen, To: Closed, Cause: CauseProbesSucceeded})
				return
			}
			continue
		}
		if b.state.CompareAndSwap(w, pack(HalfOpen, max(inflightOf(w), 1)-1, succ, genOf(w))) {
			return
		}
	}
}

// releaseProbe frees the probe slot of an ignored half-open call.
func (b *Breaker) releaseProbe(p Permit) {
	for {
		w := b.state.Load()
		if stateOf(w) != HalfOpen || genOf(w) != genOf(p.word) || inflightOf(w) == 0 {
			return
		}
		if b.state.CompareAndSwap(w, w-1<<inflightShift) {
			return
		}
	}
}

// transition moves the state word from one value to another with a CAS and,
// if it won, does what entering the new state takes. Transitions into Closed
// must hold b.mu, which guards the window they reset. The caller that won
// reports the transition with notify, after releasing any lock.
func (b *Breaker) transition(from, to uint64) bool {
	var now int64
	if st := stateOf(to); st == Closed || st == Open {
		now = b.now()
	}
	if stateOf(to) == Closed {
		// Reset before the CAS: no success is counted in the new window
		// until the CAS publishes it, so the window starts exact.
		if b.tw != nil {
			b.tw.reset(now)
		} else {
			b.cw.reset(b.fastSuccesses())
		}
		b.consec.Store(0)
	}
	if !b.state.CompareAndSwap(from, to) {
		return false
	}
	switch stateOf(to) {
	case Open:
		n := b.trips.Add(1)
		until := now + int64(b.openDuration(n))
		if until < now { // an open duration of centuries; saturate
			until = math.MaxInt64
		}
		// One allocation per trip holds the rejections of the open period and
		// of the half-open period that follows it.
		b.open.Store(&openError{b: b, gen: genOf(to), until: until,
			probing: probingError{wait: toDuration(b.backoff(n + 1))}})
	case Closed:
		b.trips.Store(0)
	}
	if f, t := stateOf(from), stateOf(to); f != t {
		b.transitions.Add(1)
		b.moves[int(f)*numStates+int(t)].Add(1)
	}
	return true
}

// openDuration returns how long the n-th consecutive trip stays open.
func (b *Breaker) openDuration(n uint32) time.Duration {
	d := b.backoff(n)
	if b.cfg.OpenJitter > 0 {
		d *= 1 - b.cfg.OpenJitter*rand.Float64()
	}
	return toDuration(d)
}

// backoff returns the open duration of the n-th consecutive trip, in
// nanoseconds, before jitter: the longest it may be.
func (b *Breaker) backoff(n uint32) float64 {
	d := float64(b.cfg.OpenDuration) * math.Pow(b.cfg.OpenBackoff, float64(n-1))
	return min(d, float64(b.cfg.MaxOpenDuration))
}

// toDuration converts nanoseconds to a Duration, saturating:
// float64(math.MaxInt64) rounds up to 2^63, which would convert to a negative
// Duration.
func toDuration(d float64) time.Duration {
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// openError is the rejection of an open breaker, one per open period: it
// matches ErrOpen and carries the time left until probes are admitted.
type openError struct {
	b     *Breaker
	gen   uint64
	until int64 // breaker time at which the period ends

	// probing is the rejection of the half-open period that follows.
	probing probingError
}

func (e *openError) Error() string { return ErrOpen.Error() }
func (e *openError) Is(target error) bool {
	return target == ErrOpen || target == seawall.ErrRejected || target == seawall.ErrCircuitOpen
}

// RetryAfter returns the time left until the breaker admits probes.
func (e *openError) RetryAfter() time.Duration { return time.Duration(max(e.until-e.b.now(), 0)) }

// probingError is the rejection of a half-open breaker whose probe slots are
// all taken: it matches ErrOpen and carries, as its hint, the open duration
// the breaker would re-open for if a probe failed now, before jitter.
type probingError struct{ wait time.Duration }

func (e *probingError) Error() string { return ErrOpen.Error() }
func (e *probingError) Is(target error) bool {
	return target == ErrOpen || target == seawall.ErrRejected || target == seawall.ErrCircuitOpen
}

// RetryAfter returns the open duration a failed probe would start.
func (e *probingError) RetryAfter() time.Duration { return e.wait }

// set moves the breaker to st, whatever its state: the operator overrides.
func (b *Breaker) set(st State) {
	c := StateChange{To: st, Cause: CauseReset}
	switch st {
	case ForcedOpen:
		c.Cause = CauseForceOpen
	case Disabled:
		c.Cause = CauseDisable
	}
	b.mu.Lock()
	for {
		from := b.state.Load()
		c.From, c.Counts = stateOf(from), Counts{}
		if c.From == Closed {
			c.Counts = b.closedCounts()
		}
		if b.transition(from, pack(st, 0, 0, genOf(from)+1)) {
			break
		}
	}
	b.mu.Unlock()
	b.notify(c)
}
