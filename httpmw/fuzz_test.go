package httpmw

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/hint"
)

// FuzzRetryAfter checks that no Retry-After value makes the parser panic,
// return a negative wait or one longer than 9 digits of seconds (for
// delta-seconds), and that delta-seconds are read exactly.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "999999999", "1000000000", "-1", "1.5", " 1", "1 ", "+1", "0x10",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
		"Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "", "soon", "١٢"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := retryAfterValue(v, func() time.Time { return now })
		if !ok {
			assert.Zero(t, d)
			return
		}
		assert.GreaterOrEqual(t, d, time.Duration(0), "%q", v)
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && v[0] != '+' {
			assert.LessOrEqual(t, len(v), hint.MaxDigits, "%q", v)
			assert.Equal(t, time.Duration(n)*time.Second, d, "%q", v)
			return
		}
		when, err := http.ParseTime(v)
		require.NoError(t, err, "%q: neither digits nor a date, yet accepted", v)
		if when.After(now) {
			assert.Equal(t, when.Sub(now), d)
		} else {
			assert.Zero(t, d)
		}
	})
}

// FuzzTimeoutHeader checks that TimeoutHeader values parse to what was
// formatted, and that no value makes the parser panic or return a negative
// or out-of-range timeout.
func FuzzTimeoutHeader(f *testing.F) {
	for _, s := range []string{"0", "850", "999999999", "1000000000", "-1", "1.5", "", " 1", "1e3"} {
		f.Add(s, int64(850*time.Millisecond))
	}
	f.Fuzz(func(t *testing.T, v string, ns int64) {
		d, ok := parseTimeout(v)
		if ok {
			assert.GreaterOrEqual(t, d, time.Duration(0))
			assert.LessOrEqual(t, d, 999_999_999*time.Millisecond)
			for i := 0; i < len(v); i++ {
				assert.True(t, v[i] >= '0' && v[i] <= '9', "%q accepted", v)
			}
		}
		s := formatTimeout(time.Duration(ns))
		back, ok := parseTimeout(s)
		require.True(t, ok, "%q, formatted from %v, does not parse", s, time.Duration(ns))
		assert.LessOrEqual(t, back, max(time.Duration(ns), 0), "never more time than the caller has")
		if ns >= 0 && ns < int64(999_999_999*time.Millisecond) {
			assert.Less(t, time.Duration(ns)-back, time.Millisecond, "rounded down to the millisecond")
		}
	})
}

// FuzzClientIP checks that no header value makes ClientIP panic, and that
// the key is the peer's address unless the peer is trusted.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"198.51.100.1", "1.1.1.1, 10.0.0.1", "for=\"[2001:db8::1]:80\";proto=http", ",,,", "for=", "[", "[]:", "::", "for=\"", ";;;for=1.2.3.4", "fe80::1%eth0, 10.0.0.1", "for=\"[fe80::1%eth0]:80\"", "1.2.3.4%eth0", "fe80::1%"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	xff, err := ClientIP("X-Forwarded-For", "10.0.0.0/8")
	require.NoError(f, err)
	fwd, err := ClientIP("Forwarded", "10.0.0.0/8")
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, v string, trusted bool) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "203.0.113.9:1"
		if trusted {
			r.RemoteAddr = "10.0.0.1:1"
		}
		r.Header.Set("X-Forwarded-For", v)
		r.Header.Set("Forwarded", v)
		for _, key := range []KeyFunc{xff, fwd} {
			k := key(r)
			if !trusted {
				assert.Equal(t, "203.0.113.9", k)
			}
			assert.NotEmpty(t, k)
		}
	})
}
