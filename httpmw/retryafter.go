package httpmw

import (
	"net/http"
	"time"
)

// maxRetryAfterDigits bounds a delta-seconds Retry-After: 9 digits is
// about 31 years; anything longer is absurd and ignored.
const maxRetryAfterDigits = 9

// parseRetryAfter returns the wait a response asks for: its
// RetryAfterMsHeader if it has exactly one well-formed value (1 to 9
// digits), else its Retry-After if it has exactly one well-formed value
// (see retryAfterValue).
func parseRetryAfter(h http.Header) (time.Duration, bool) {
	if vs := h[RetryAfterMsHeader]; len(vs) == 1 {
		if ms, ok := parseDigits(vs[0], maxTimeoutDigits); ok {
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
		s, ok := parseDigits(v, maxRetryAfterDigits)
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
