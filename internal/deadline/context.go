package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A Context is a context.Context with a deadline, as context.WithDeadline
// makes one, whose timer is armed only if somebody waits for it: an
// operation that never calls Done (nor registers a context.AfterFunc, nor
// derives a cancellable child) costs one allocation, the Context, where
// context.WithDeadline costs four (its context, a timer and two closures)
// and, for a cancellable parent, an entry in the parent's map of children.
//
// Until somebody waits, the Context watches neither the clock nor its
// parent: Deadline answers at once, and Err compares the clock with the
// deadline and asks the parent, so that Err is context.DeadlineExceeded
// once the deadline has passed even if nobody called Done, and the
// parent's error once the parent is done. The first non-nil Err is kept.
// Value passes through to the parent.
//
// The first call to Done (context.AfterFunc and context.WithCancel of the
// Context call it) makes the standard context.WithDeadline(parent, d) and
// hands everything to it from then on: its timer, its registration with
// the parent, and its children. That is where the context package's
// propagation of cancellation lands: it looks for a *cancelCtx behind a
// parent with Value(&cancelCtxKey) (a *int key, which Value hands to the
// standard context) and checks that its done channel is the parent's
// Done, which it is; so a child context.WithCancel, WithTimeout or
// context.AfterFunc of a Context is put in that *cancelCtx's children,
// as under context.WithDeadline, and no goroutine is started for it
// (without that, the context package would start one per child, waiting
// on Done). An operation that waits pays what context.WithDeadline costs
// (four allocations, and its done channel when first asked), plus this
// Context.
//
// If Err has already answered (the deadline passed or the parent ended
// before anybody waited), or Cancel was called, Done returns a closed
// channel and context.Cause answers the error kept: DeadlineExceeded for
// the deadline, Canceled for Cancel, the parent's cause for the parent.
//
// # Where it differs from context.WithDeadline
//
// Every answer is one that context.WithDeadline can give, but not always
// the one it gives most often: its timer may run late (under load,
// arbitrarily late), and a Context that nobody waits on has no timer, so
// when two endings have both happened unobserved, the one that does not
// depend on a timer wins.
//
//   - Cancel called after the deadline has passed, on a Context nobody
//     waited on and whose Err has not been asked since the deadline,
//     makes Err Canceled, as context.WithDeadline does when its cancel
//     runs before its timer. (Reading the clock in Cancel to say
//     DeadlineExceeded would cost every operation a clock read at its
//     end.)
//   - A parent cancelled after the deadline, with neither seen in
//     between, makes Err the parent's error, as context.WithDeadline does
//     when the parent's cancellation reaches it before its timer runs.
//     (A parent cancelled before the deadline always wins, as it does
//     under context.WithDeadline.)
//
// A Context is safe for concurrent use by multiple goroutines. Its zero
// value is not usable: make one with [WithDeadline] or [WithTimeout].
type Context struct {
	parent context.Context
	dl     time.Time // Deadline's answer: the deadline given, or the parent's if earlier
	own    bool      // dl is the deadline given (not the parent's): Err reads the clock
	state  atomic.Uint32
	mu     sync.Mutex // serialises the slow transitions: waiting, and making std
	// std is the standard context the Context hands itself to, written
	// once under mu before state has made, and read only after.
	std    context.Context
	cancel context.CancelFunc // std's, in state waiting
}

// The states of a Context. A Context moves from live to one of the others
// once, and from busy only to waiting; the ended states are final. Made is
// or'ed into a state once std is made (in waiting, at once).
const (
	live       = iota // nobody waits, not ended: Err reads the parent and the clock
	busy              // a goroutine holding mu is making std
	waiting           // std is context.WithDeadline(parent, d), which answers everything
	expired           // ended: the deadline passed before anybody waited (DeadlineExceeded)
	cancelled         // ended: Cancel was called before anybody waited (Canceled)
	parentDone        // ended: the parent ended before anybody waited; Err is the parent's

	made = 1 << 8 // std is made
)

// WithDeadline returns a Context derived from parent that ends at d, when
// parent ends, or when Cancel is called, whichever happens first, as
// context.WithDeadline(parent, d) does. Its deadline is d, or the parent's
// if that is earlier (the parent then rules, as with context.WithDeadline).
// The caller must call Cancel when the operation ends, which releases the
// timer if somebody armed one.
func WithDeadline(parent context.Context, d time.Time) *Context {
	if parent == nil {
		panic("deadline: WithDeadline of a nil parent context")
	}
	c := &Context{parent: parent, dl: d, own: true}
	if cur, ok := parent.Deadline(); ok && cur.Before(d) {
		c.dl, c.own = cur, false
	}
	return c
}

// WithTimeout is shorthand for WithDeadline(parent, time.Now().Add(timeout)).
func WithTimeout(parent context.Context, timeout time.Duration) *Context {
	return WithDeadline(parent, time.Now().Add(timeout))
}

// Deadline returns the Context's deadline: the one it was made with, or
// its parent's if earlier. It reads neither the clock nor the parent.
func (c *Context) Deadline() (time.Time, bool) { return c.dl, true }

// Done returns a channel closed when the Context ends. Its first call makes
// the standard context that watches the deadline and the parent (see
// [Context]), unless the Context has already ended.
func (c *Context) Done() <-chan struct{} {
	switch s := c.state.Load(); {
	case s&made != 0:
		return c.std.Done()
	case s == parentDone:
		return c.parent.Done()
	}
	return c.wait().Done()
}

// Err returns nil while the Context has not ended, and then why it ended:
// context.DeadlineExceeded, context.Canceled (Cancel), or the parent's
// error. Until somebody waits on the Context, it reads the parent's Err
// and then, if the parent has not ended, the clock.
func (c *Context) Err() error {
	for {
		switch c.state.Load() &^ made {
		case live:
			if err := c.parent.Err(); err != nil {
				if c.state.CompareAndSwap(live, parentDone) {
					return err
				}
				continue
			}
			if !c.own || time.Until(c.dl) > 0 {
				return nil
			}
			if c.state.CompareAndSwap(live, expired) {
				return context.DeadlineExceeded
			}
		case busy:
			c.mu.Lock() // held by the goroutine making std
			c.mu.Unlock()
		case waiting:
			return c.std.Err()
		case expired:
			return context.DeadlineExceeded
		case cancelled:
			return context.Canceled
		case parentDone:
			return c.parent.Err()
		}
	}
}

// Value returns the parent's value for key, as a context.WithDeadline
// would. The context package's own key (a *int, which context.Cause and
// the propagation of cancellation to children ask) is answered by the
// standard context of [Context], made if need be.
func (c *Context) Value(key any) any {
	if _, ok := key.(*int); !ok {
		return c.parent.Value(key) // what a context.WithDeadline would answer
	}
	switch s := c.state.Load(); {
	case s&made != 0:
		return c.std.Value(key)
	case s == live, s == parentDone:
		// Live: nobody asks for the context package's key before Err or
		// Done, which move the state on; the parent's answer is right
		// for anything else. Ended by the parent: the parent's cause is
		// this Context's.
		return c.parent.Value(key)
	}
	return c.wait().Value(key)
}

// Cancel ends the Context, if it has not ended, with context.Canceled (or
// the parent's error, if the parent has ended), and releases its timer and
// its registration with its parent, if somebody armed them. It is the
// CancelFunc of context.WithDeadline, and may be called more than once;
// after the first, it does nothing.
func (c *Context) Cancel() {
	for {
		switch c.state.Load() {
		case live:
			to := uint32(cancelled)
			if c.parent.Err() != nil {
				to = parentDone // the parent's cancellation reaches a waited context at once
			}
			if c.state.CompareAndSwap(live, to) {
				return
			}
		case busy:
			c.mu.Lock()
			c.mu.Unlock()
		case waiting | made:
			c.cancel()
			return
		default:
			return // ended
		}
	}
}

// String returns a description of the Context like context.WithDeadline's:
// the parent's, then ".WithDeadline(deadline [time left])".
func (c *Context) String() string {
	var name string
	if s, ok := c.parent.(interface{ String() string }); ok {
		name = s.String()
	} else {
		name = "context"
	}
	return name + ".WithDeadline(" + c.dl.String() + " [" + time.Until(c.dl).String() + "])"
}

// wait returns the standard context that Done, and the context package's
// key of Value, hand over to, making it if it is not made: in a live
// Context, context.WithDeadline(parent, d), which from then on watches the
// deadline and the parent; in one ended before anybody waited, a context
// already ended, whose cause is this Context's and whose values are the
// parent's; in one ended by its parent, the parent.
func (c *Context) wait() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		s := c.state.Load()
		if s&made != 0 {
			return c.std
		}
		switch s {
		case live:
			if !c.state.CompareAndSwap(live, busy) {
				continue // ended meanwhile
			}
			// The deadline may have passed and the parent ended unseen:
			// context.WithDeadline then ends at once, the parent first,
			// as Err would have said.
			if c.own {
				c.std, c.cancel = context.WithDeadline(c.parent, c.dl)
			} else {
				// What context.WithDeadline makes under a parent whose
				// deadline is earlier.
				c.std, c.cancel = context.WithCancel(c.parent)
			}
			c.state.Store(waiting | made)
			return c.std
		case parentDone:
			return c.parent
		case expired, cancelled:
			cause := context.DeadlineExceeded
			if s == cancelled {
				cause = context.Canceled
			}
			// An ended context with this cause, whose values are the
			// parent's (context.WithoutCancel hides the parent's cause).
			ctx, cancel := context.WithCancelCause(context.WithoutCancel(c.parent))
			cancel(cause)
			c.std = ctx
			c.state.Or(made)
			return c.std
		}
	}
}
