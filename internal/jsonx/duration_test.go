package jsonx

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDurationUnmarshal(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{`"250ms"`, 250 * time.Millisecond},
		{`"1m30s"`, 90 * time.Second},
		{`"1.5s"`, 1500 * time.Millisecond},
		{`"-2h"`, -2 * time.Hour},
		{`"0"`, 0},
		{`"1\u0073"`, time.Second}, // JSON escapes are decoded first
		{`1500`, 1500 * time.Nanosecond},
		{`0`, 0},
		{`-5`, -5},
		{` 42 `, 42},
		{`9223372036854775807`, math.MaxInt64},
		{`-9223372036854775808`, math.MinInt64},
	} {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			require.NoError(t, d.UnmarshalJSON([]byte(tt.in)))
			assert.Equal(t, tt.want, time.Duration(d))
		})
	}
}

func TestDurationUnmarshalErrors(t *testing.T) {
	for _, tt := range []struct {
		in       string
		mentions string // the bad value, as the error must name it
	}{
		{`"abc"`, `"abc"`},
		{`"-"`, `"-"`},
		{`""`, `""`},
		{`"1.5"`, `"1.5"`}, // no unit
		{`"3 days"`, `"3 days"`},
		{`true`, `true`},
		{`{}`, `{}`},
		{`[]`, `[]`},
		{`1e30`, `1e30`}, // out of range
		{`1.5`, `1.5`},   // not an integer
		{`9223372036854775808`, `9223372036854775808`},
		{`"9999999999h"`, `"9999999999h"`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			const before = Duration(7 * time.Second)
			d := before
			err := d.UnmarshalJSON([]byte(tt.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.mentions)
			assert.Equal(t, before, d, "a failed decode must leave the value unchanged")
		})
	}
}

// TestDurationUnmarshalNull checks the encoding/json convention that
// UnmarshalJSON([]byte("null")) is a no-op, as it is for a time.Duration
// field. encoding/json calls UnmarshalJSON with null for a (non-pointer)
// Duration field.
func TestDurationUnmarshalNull(t *testing.T) {
	d := Duration(7 * time.Second)
	require.NoError(t, d.UnmarshalJSON([]byte(`null`)))
	assert.Equal(t, Duration(7*time.Second), d)

	var cfg struct{ Timeout Duration }
	cfg.Timeout = Duration(time.Second)
	require.NoError(t, json.Unmarshal([]byte(`{"Timeout": null}`), &cfg))
	assert.Equal(t, Duration(time.Second), cfg.Timeout)
}

func TestDurationMarshal(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{1500 * time.Millisecond, `"1.5s"`},
		{250 * time.Millisecond, `"250ms"`},
		{90 * time.Second, `"1m30s"`},
		{0, `"0s"`},
		{-time.Hour, `"-1h0m0s"`},
	} {
		b, err := Duration(tt.in).MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(b))
	}
}

// TestDurationInConfig uses Duration the way Config types do: as a field,
// directly or through a pointer, decoded and encoded by encoding/json.
func TestDurationInConfig(t *testing.T) {
	type config struct {
		Timeout Duration  `json:"timeout"`
		Window  *Duration `json:"window,omitempty"`
	}
	var c config
	require.NoError(t, json.Unmarshal([]byte(`{"timeout":"2s","window":1000}`), &c))
	assert.Equal(t, Duration(2*time.Second), c.Timeout)
	require.NotNil(t, c.Window)
	assert.Equal(t, Duration(time.Microsecond), *c.Window)

	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.JSONEq(t, `{"timeout":"2s","window":"1µs"}`, string(b))

	err = json.Unmarshal([]byte(`{"timeout":"soon"}`), &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"soon"`)
}

func TestDurationRoundTrip(t *testing.T) {
	values := []time.Duration{
		0, 1, -1, time.Microsecond, 1500 * time.Millisecond, -90 * time.Minute,
		math.MaxInt64, math.MinInt64, math.MinInt64 + 1,
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		v := time.Duration(r.Int64())
		if r.IntN(2) == 0 {
			v = -v
		}
		values = append(values, v, v>>r.UintN(63))
	}
	for _, v := range values {
		b, err := json.Marshal(Duration(v))
		require.NoError(t, err)
		var got Duration
		require.NoError(t, json.Unmarshal(b, &got), "decoding %s", b)
		require.Equal(t, v, time.Duration(got), "round trip through %s", b)
	}
}

func FuzzDurationUnmarshal(f *testing.F) {
	for _, s := range []string{
		`"250ms"`, `"1m30s"`, `1500`, `"abc"`, `"-"`, `true`, `{}`, `1e30`, `null`,
		`"-2562047h47m16.854775808s"`, `"1.5µs"`, `"\u0031s"`, `-9223372036854775808`, `"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Duration
		if err := d.UnmarshalJSON(b); err != nil {
			return
		}
		out, err := d.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON(%d): %v", d, err)
		}
		var back Duration
		if err := back.UnmarshalJSON(out); err != nil {
			t.Fatalf("UnmarshalJSON(%s), from input %q: %v", out, b, err)
		}
		if back != d {
			t.Fatalf("input %q decoded to %d, re-encoded as %s, decoded to %d", b, d, out, back)
		}
	})
}
