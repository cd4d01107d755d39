// Package hint holds what every transport of seawall shares about the
// retry-after hints and deadlines it puts on the wire: one rounding rule
// and one number parser. Each transport package keeps its own wire formats
// (header and trailer names, seconds or milliseconds) in one file of its
// own, written with these.
package hint

import "time"

// MaxDigits bounds every number a transport reads or writes: 9 decimal
// digits (999,999,999 ms is about 11.5 days, as many seconds about 31
// years) cannot overflow, and anything longer is absurd.
const MaxDigits = 9

// MaxValue is the largest number of MaxDigits digits.
const MaxValue = 999_999_999

// Ceil returns d rounded up to a whole multiple of unit (a millisecond, a
// second), in units, capped at 999,999,999, and 0 for d <= 0. Hints are
// rounded up, never down: a client that waits what it is told finds the
// server ready, and one told "0" would come back at once.
func Ceil(d, unit time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return min(int64((d-1)/unit)+1, MaxValue)
}

// CeilMillis is Ceil(d, time.Millisecond) as a Duration: the wait a hint of
// d says on the wire, so that a message that shows it ("retry in 3ms")
// agrees with the header or trailer that carries it.
func CeilMillis(d time.Duration) time.Duration {
	return time.Duration(Ceil(d, time.Millisecond)) * time.Millisecond
}

// ParseDigits parses v as a decimal number of 1 to MaxDigits ASCII digits,
// and nothing else: no sign ("-0" too), no space, no fraction, no unit.
func ParseDigits(v string) (n int64, ok bool) {
	if len(v) == 0 || len(v) > MaxDigits {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
