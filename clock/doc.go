// Package clock provides [Coarse], a monotonic clock that is cheaper to read
// than the runtime's because a goroutine the user starts and stops keeps a
// shared reading up to date: a read is one atomic load instead of a clock
// read (about 35 ns on a virtual machine whose clock source is kvm-clock,
// under 1 ns for the load).
//
// Nothing in seawall starts a Coarse clock: a limiter or breaker reads the
// runtime's monotonic clock unless its Config names a Coarse clock, which
// the user creates with [NewCoarse] and stops with [Coarse.Stop]. The price
// is accuracy: a reading lags real time by up to one tick (see [Coarse]
// for the bound, and each policy's Config for what it does to the policy).
//
// Package clock imports only the standard library; policies import it, as
// they import the root package.
package clock
