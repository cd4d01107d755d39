// Package bubble helps tests that run in testing/synctest bubbles.
package bubble

import "time"

// Sleep advances the fake clock of the synctest bubble it is called in by
// d. It panics outside a bubble, where the clock is real, so that no test
// sleeps for real: a bubble's clock starts at midnight UTC 2000-01-01, as
// the testing/synctest documentation says, and no test runs a year in one.
func Sleep(d time.Duration) {
	if time.Now().Year() != 2000 {
		panic("bubble.Sleep called outside a synctest bubble: tests never sleep for real")
	}
	time.Sleep(d) // in a synctest bubble: advances its fake clock
}
