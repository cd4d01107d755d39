//go:build race

package ratelimit

// raceEnabled reports whether the tests run under the race detector (go
// test -race), where a single goroutine's million calls cost 30 times the
// CPU they cost without and find no race the detector could report.
const raceEnabled = true
