package httpmw

import (
	"net/http"
	"strconv"
	"time"

	"github.com/seawall-go/seawall/internal/hint"
)

// This file holds every header of this package that carries a wait or a
// deadline, how it is written and how it is read, with the rounding rule
// and the digit parser of internal/hint that every transport of seawall
// shares. Hints are rounded up (a client that waits what it is told finds
// the server ready); a propagated timeout is rounded down (a server never
// gets more time than its caller gives it). Every number on the wire is 1
// to hint.MaxDigits ASCII digits, and one that is not is ignored.

// RetryAfterMsHeader says when to retry in whole milliseconds (rounded
// up), beside Retry-After, whose whole seconds are too coarse for a
// limiter whose next token comes in 3ms: a caller with less than a second
// left would take "Retry-After: 1" as "give up now". Azure's services send
// the same header (retry-after-ms), which Azure's SDKs read before
// Retry-After. The [Transport] prefers it to Retry-After.
const RetryAfterMsHeader = "Retry-After-Ms"

// TimeoutHeader carries a request's deadline from a client to a server, as
// the time the client will still wait for the answer, in whole
// milliseconds ("850"): a relative time, so that the two clocks need not
// agree. The client [Transport] sets it on every attempt whose context has
// a deadline (rounding down); a [Server] with WithDeadline gives the
// handler's context that deadline, capped by its maximum, and does not
// start a request whose time is already up.
const TimeoutHeader = "Seawall-Timeout"

// RetryAfterSeconds returns d in whole seconds, rounded up, as a Retry-After
// header carries it: 1 for 1ms, 2 for 1.5s, 0 for d ≤ 0, and at most
// 999,999,999 (about 31 years; a longer one would be ignored by a
// [Transport], which reads at most 9 digits).
func RetryAfterSeconds(d time.Duration) int64 {
	return hint.Ceil(d, time.Second)
}

// setRetryAfter sets, for a positive d, Retry-After (whole seconds) and
// RetryAfterMsHeader (whole milliseconds), both rounded up.
func setRetryAfter(h http.Header, d time.Duration) {
	if d <= 0 {
		return
	}
	h.Set("Retry-After", strconv.FormatInt(hint.Ceil(d, time.Second), 10))
	h.Set(RetryAfterMsHeader, strconv.FormatInt(hint.Ceil(d, time.Millisecond), 10))
}

// parseRetryAfter returns the wait a response asks for: its
// RetryAfterMsHeader if it has exactly one well-formed value (1 to 9
// digits), else its Retry-After if it has exactly one well-formed value
// (see retryAfterValue).
func parseRetryAfter(h http.Header) (time.Duration, bool) {
	if vs := h[RetryAfterMsHeader]; len(vs) == 1 {
		if ms, ok := hint.ParseDigits(vs[0]); ok {
			return time.Duration(ms) * time.Millisecond, true
		}
	}
	vs := h["Retry-After"]
	if len(vs) != 1 {
		return 0, false
	}
	return retryAfterValue(vs[0], time.Now)
}

// retryAfterValue parses a Retry-After value (RFC 9110, section 10.2.3):
// delta-seconds (1 to 9 ASCII digits: "120"), or an HTTP date
// (http.ParseTime), which is turned into the time from now until then, 0
// if it is past. Anything else (a sign, a fraction, spaces inside, a
// number of more than 9 digits, an unknown date format) is ignored: ok is
// false. now is read only for a date.
func retryAfterValue(v string, now func() time.Time) (d time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if c := v[0]; c >= '0' && c <= '9' {
		s, ok := hint.ParseDigits(v)
		return time.Duration(s) * time.Second, ok
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now())
	if d < 0 {
		d = 0
	}
	return d, true
}

// formatTimeout returns the value of TimeoutHeader for d: whole
// milliseconds, rounded down, 0 for anything below a millisecond, and at
// most 9 digits.
func formatTimeout(d time.Duration) string {
	ms := max(int64(d/time.Millisecond), 0)
	return strconv.FormatInt(min(ms, hint.MaxValue), 10)
}

// setTimeout sets TimeoutHeader to d (see formatTimeout).
func setTimeout(h http.Header, d time.Duration) {
	h[TimeoutHeader] = []string{formatTimeout(d)}
}

// parseTimeout parses a value of TimeoutHeader: 1 to 9 ASCII digits and
// nothing else (no sign, no space, no unit); ok is false for anything
// else, which the server ignores.
func parseTimeout(v string) (d time.Duration, ok bool) {
	ms, ok := hint.ParseDigits(v)
	return time.Duration(ms) * time.Millisecond, ok
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
