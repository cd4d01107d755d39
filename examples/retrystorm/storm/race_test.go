//go:build race

package storm

// raceEnabled reports whether the tests run under the race detector
// (go test -race), where an attempt of the scenario costs about ten times
// the CPU it costs without.
const raceEnabled = true
