package httpmw

import (
	"net/http"
	"strconv"
	"time"
)

// TimeoutHeader carries a request's deadline from a client to a server, as
// the time the client will still wait for the answer, in whole
// milliseconds ("850"): a relative time, so that the two clocks need not
// agree. The client [Transport] sets it on every attempt whose context has
// a deadline (rounding down); the server middleware ([Deadline]) gives the
// handler's context that deadline, capped by its maximum, and does not
// start a request whose time is already up.
const TimeoutHeader = "Seawall-Timeout"

// maxTimeoutDigits bounds the header's value: 9 digits of milliseconds is
// about 11.5 days, far past any sane deadline, and cannot overflow.
const maxTimeoutDigits = 9

// formatTimeout returns the value of TimeoutHeader for d: whole
// milliseconds, rounded down, 0 for anything below a millisecond, and at
// most 9 digits.
func formatTimeout(d time.Duration) string {
	ms := max(int64(d/time.Millisecond), 0)
	return strconv.FormatInt(min(ms, 999_999_999), 10)
}

// parseTimeout parses a value of TimeoutHeader. It accepts 1 to 9 ASCII
// digits and nothing else (no sign, no space, no unit); ok is false for
// anything else, which the server ignores.
func parseTimeout(v string) (d time.Duration, ok bool) {
	ms, ok := parseDigits(v, maxTimeoutDigits)
	return time.Duration(ms) * time.Millisecond, ok
}

// parseDigits parses v as a decimal number of 1 to maxDigits ASCII digits
// (at most 18, so that it cannot overflow), and nothing else.
func parseDigits(v string, maxDigits int) (n int64, ok bool) {
	if len(v) == 0 || len(v) > maxDigits {
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

// requestTimeout returns the timeout a request carries in TimeoutHeader,
// if it carries exactly one well-formed value.
func requestTimeout(h http.Header) (time.Duration, bool) {
	vs := h[TimeoutHeader]
	if len(vs) != 1 {
		return 0, false
	}
	return parseTimeout(vs[0])
}
