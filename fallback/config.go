package fallback

import (
	"context"
	"errors"
)

// Config configures a [Fallback] of values of type T. Fallback is required;
// the zero value of Handles is [DefaultHandles].
//
// Config has no JSON form: both of its fields are functions.
type Config[T any] struct {
	// Fallback returns the answer in place of a failed call's: an
	// alternative value, or an error (the original one, wrapped or not, or
	// another). It gets the call's context (which may have passed its
	// deadline: a fallback that does I/O should check it, or detach from it
	// with context.WithoutCancel and a deadline of its own) and the error
	// that triggered it. Required.
	Fallback func(ctx context.Context, err error) (T, error)

	// Handles reports whether an error of the call triggers the fallback.
	// It is called only with non-nil errors. Default [DefaultHandles].
	Handles func(err error) bool
}

// PolicyConfig configures a [Policy], the error-only form of a Fallback.
// Fallback is required; the zero value of Handles is [DefaultHandles].
type PolicyConfig struct {
	// Fallback returns the outcome in place of a failed call's: nil to turn
	// the failure into a success (after serving the call some other way),
	// or an error. It gets the call's context and the error that triggered
	// it. Required.
	Fallback func(ctx context.Context, err error) error

	// Handles reports whether an error of the call triggers the fallback.
	// It is called only with non-nil errors. Default [DefaultHandles].
	Handles func(err error) bool
}

// DefaultHandles is the default Config.Handles: every error triggers the
// fallback except a cancelled context (context.Canceled), since a caller
// that gave up wants no answer. A passed deadline
// (context.DeadlineExceeded) does trigger it, as do rejections
// (seawall.ErrRejected) and errors marked seawall.Permanent.
func DefaultHandles(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled)
}

// handlesOrDefault returns h, or DefaultHandles if h is nil.
func handlesOrDefault(h func(error) bool) func(error) bool {
	if h == nil {
		return DefaultHandles
	}
	return h
}

// errNoFallback is New's error for a nil Config.Fallback.
var errNoFallback = errors.New("fallback: Fallback is nil")
