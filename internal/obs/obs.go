// Package obs is how a policy tells the registry that named it about its
// slow-path events (a breaker's transitions, a bulkhead's waits, a retry
// budget running dry), without a registry the policy pays nothing but one
// atomic load on those slow paths, and nothing at all on its success path.
//
// Every policy keeps a Slot and returns it from an exported Registration
// method; the Slot has no exported methods, and the functions that use it
// live here, in an internal package, so that only this module's registry can
// claim a policy.
package obs

import (
	"sync/atomic"
	"time"
)

// Type is the kind of an Event.
type Type uint8

const (
	// StateChanged is a breaker's transition; Detail is its
	// breaker.StateChange (whose Name is a group member's key).
	StateChanged Type = iota + 1
	// Waited is a call admitted by a bulkhead (or an adaptive limiter)
	// after Duration in its queue.
	Waited
	// BudgetExhausted is a retry budget refusing a retry after allowing
	// the one before; BudgetRestored is it allowing one again.
	BudgetExhausted
	BudgetRestored
	// LimitChanged is an adaptive limiter moving its limit from Prev to
	// Count.
	LimitChanged
	// CallRetried is a call that made Count retries, having waited
	// Duration in all between its attempts; Detail is its outcome, a
	// retry reason string ("" for a success).
	CallRetried
)

// Event is one slow-path event of a policy.
type Event struct {
	Type     Type
	Duration time.Duration
	Count    int
	Prev     int
	Detail   any
}

// Sink receives the events of the policies bound to it. Emit is called on
// the policy's slow path, outside its locks, by the goroutine that caused
// the event.
type Sink interface {
	Emit(b *Binding, e Event)
}

// Binding ties a policy to its owner (a registry) under a name.
type Binding struct {
	Owner any
	Name  string
	Sink  Sink
}

// Slot records the binding of one policy. Its zero value is unbound.
type Slot struct {
	b atomic.Pointer[Binding]
}

// Claim binds s to b unless it is bound already, and reports whether it
// did.
func Claim(s *Slot, b *Binding) bool { return s.b.CompareAndSwap(nil, b) }

// Release unbinds s if it is bound to b, and reports whether it was.
func Release(s *Slot, b *Binding) bool { return s.b.CompareAndSwap(b, nil) }

// Bound returns the binding of s, or nil.
func Bound(s *Slot) *Binding { return s.b.Load() }

// Emit sends e to the sink s is bound to, if any.
func Emit(s *Slot, e Event) {
	if b := s.b.Load(); b != nil {
		b.Sink.Emit(b, e)
	}
}
