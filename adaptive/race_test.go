//go:build race

package adaptive

// raceEnabled reports whether the tests run under the race detector (go
// test -race), where the simulations of whole minutes cost ten times the
// CPU they cost without.
const raceEnabled = true
