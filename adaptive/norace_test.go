//go:build !race

package adaptive

// raceEnabled: see race_test.go.
const raceEnabled = false
