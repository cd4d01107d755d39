package ratelimit

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// configErrorCases are invalid Configs and what their errors must contain:
// the field at fault followed by its bad value, as an operator needs them
// to fix the file.
var configErrorCases = []struct {
	name string
	cfg  Config
	want []string
}{
	{"zero Config: Rate is required", Config{}, []string{"Rate 0"}},
	{"Rate negative", Config{Rate: -1}, []string{"Rate -1"}},
	{"Rate NaN", Config{Rate: math.NaN()}, []string{"Rate NaN"}},
	{"Rate -Inf", Config{Rate: math.Inf(-1)}, []string{"Rate -Inf"}},
	{"Rate above 1e9", Config{Rate: 2e9}, []string{"Rate 2e+09"}},
	{"Burst negative", Config{Rate: 1, Burst: -1}, []string{"Burst -1"}},
	{"Burst negative at Inf", Config{Rate: math.Inf(1), Burst: -5}, []string{"Burst -5"}},
	{"refill too long", Config{Rate: 1e-3, Burst: 1e6}, []string{"Burst 1000000", "Rate 0.001"}},
	{"default Burst, rate too low", Config{Rate: 1e-9}, []string{"Burst 1", "Rate 1e-09"}},
	{"Burst huge", Config{Rate: 1e9, Burst: math.MaxInt}, []string{"Burst 9223372036854775807"}},
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range configErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.cfg)
			assert.Nil(t, l)
			require.Error(t, err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "ratelimit: "), "error %q lacks the package prefix", msg)
			for _, w := range tc.want {
				assert.Contains(t, msg, w, "the error must name the field and its bad value")
			}
			k, kerr := NewKeyed(KeyedConfig{Config: tc.cfg})
			assert.Nil(t, k)
			assert.Equal(t, err, kerr, "NewKeyed checks its Config alike")
		})
	}
	for _, n := range []int{-1, maxMaxKeys + 1} {
		_, err := NewKeyed(KeyedConfig{Config: Config{Rate: 1}, MaxKeys: n})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "ratelimit: MaxKeys "+strings.TrimSpace(json.Number(itoa(n)).String()))
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestConfigLimitsAccepted: the validator is not stricter than the
// documented limits; each configuration sits on a bound.
func TestConfigLimitsAccepted(t *testing.T) {
	for name, cfg := range map[string]Config{
		"Rate 1e9":                 {Rate: 1e9},
		"Rate +Inf":                {Rate: math.Inf(1)},
		"Rate +Inf, Burst ignored": {Rate: math.Inf(1), Burst: math.MaxInt},
		"tiny Rate, 10y refill":    {Rate: 1 / (10 * 365 * 24 * 3600.0)},
		"Burst 1":                  {Rate: 0.5, Burst: 1},
		"refill exactly 10y":       {Rate: 1, Burst: 10 * 365 * 24 * 3600},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			assert.NoError(t, err)
		})
	}
}

// TestConfigDefaults: a zero Burst is one second's worth of events, at
// least 1; MaxKeys defaults to 10000.
func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{0.2, 1}, {1, 1}, {2.5, 3}, {100, 100}, {1e9, 1e9}, {math.Inf(1), 1}} {
		l := mustNew(t, Config{Rate: tc.rate})
		assert.Equal(t, tc.burst, l.Burst(), "Rate %v", tc.rate)
	}
	c, err := KeyedConfig{Config: Config{Rate: 1}}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 10_000, c.MaxKeys)
	assert.Equal(t, 1, c.Burst)
}

func TestConfigJSON(t *testing.T) {
	var c Config
	require.NoError(t, json.Unmarshal([]byte(`{"rate": 2.5, "burst": 4}`), &c))
	assert.Equal(t, Config{Rate: 2.5, Burst: 4}, c)
	assert.EqualError(t, json.Unmarshal([]byte(`{"rate": 2.5, "burst": 4, "unknown": 1}`), &c),
		`ratelimit: config: unknown field "unknown"`, "an unknown field is an error (see json_test.go)")
	out, err := json.Marshal(c)
	require.NoError(t, err)
	assert.JSONEq(t, `{"rate":2.5,"burst":4}`, string(out))

	for _, doc := range []string{`{"rate":"inf"}`, `{"rate":"Inf"}`, `{"rate":"+inf"}`} {
		c = Config{}
		require.NoError(t, json.Unmarshal([]byte(doc), &c), doc)
		assert.True(t, math.IsInf(c.Rate, 1), doc)
	}
	out, err = json.Marshal(Config{Rate: math.Inf(1)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"rate":"inf"}`, string(out))

	c = Config{Rate: 3, Burst: 2}
	require.NoError(t, json.Unmarshal([]byte(`{"rate":null}`), &c))
	assert.Equal(t, Config{Rate: 3, Burst: 2}, c, "null leaves the value")

	var kc KeyedConfig
	require.NoError(t, json.Unmarshal([]byte(`{"rate":"inf","burst":3,"maxKeys":500}`), &kc))
	assert.Equal(t, KeyedConfig{Config: Config{Rate: math.Inf(1), Burst: 3}, MaxKeys: 500}, kc)
	out, err = json.Marshal(kc)
	require.NoError(t, err)
	assert.JSONEq(t, `{"rate":"inf","burst":3,"maxKeys":500}`, string(out))

	for _, tc := range []struct{ doc, want string }{
		{`{"rate":"fast"}`, `"fast"`},
		{`{"rate":"-inf"}`, `"-inf"`},
		{`{"rate":true}`, `true`},
		{`{"burst":1.5}`, `burst`},
		{`{"rate":[1]}`, `[1]`},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			var c Config
			err := json.Unmarshal([]byte(tc.doc), &c)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "ratelimit: config:"), "error %q lacks the prefix", err)
			assert.Contains(t, err.Error(), tc.want)
			var kc KeyedConfig
			require.Error(t, json.Unmarshal([]byte(tc.doc), &kc))
		})
	}
	_, err = json.Marshal(Config{Rate: math.NaN()})
	assert.Error(t, err, "NaN has no JSON form")
}

// FuzzConfig: New never panics, rejects with an error prefixed
// "ratelimit: " naming Rate or Burst, and a limiter it accepts survives a
// random workload (Allow, Try, Reserve, Cancel, Wait with deadlines,
// SetRate, SetBurst, clock steps) in a synctest bubble without panicking,
// and never admits more than Rate × elapsed + Burst tokens by Allow and
// Try while its settings hold. An accepted Config round-trips through JSON.
func FuzzConfig(f *testing.F) {
	f.Add(1.0, 1, []byte{0, 1, 2, 3})
	f.Add(0.0, 0, []byte{})
	f.Add(1e9, 1_000_000_000, []byte{0, 0, 0, 9, 4, 4})
	f.Add(math.Inf(1), 0, []byte{5, 6, 7, 0})
	f.Add(0.75, 3, []byte{1, 1, 1, 8, 2, 2, 3, 3, 4, 4, 9, 9})
	f.Add(math.NaN(), 1, []byte{})
	f.Add(-1.0, -1, []byte{})
	f.Add(3.17e-8, 1, []byte{4, 4, 4})
	f.Add(2.219e-07, 32, []byte("X8")) // long clock steps, capped
	f.Fuzz(func(t *testing.T, rate float64, burst int, ops []byte) {
		cfg := Config{Rate: rate, Burst: burst}
		if _, err := New(cfg); err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "ratelimit: ") || !strings.Contains(msg, "Rate") && !strings.Contains(msg, "Burst") {
				t.Fatalf("New(%+v): error %q lacks the prefix or the field", cfg, err)
			}
			return
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", cfg, err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil || back != cfg {
			t.Fatalf("JSON round trip of %+v: %s → %+v, %v", cfg, b, back, err)
		}
		if len(ops) > 64 {
			ops = ops[:64]
		}
		synctest.Test(t, func(t *testing.T) { fuzzWorkload(t, cfg, ops) })
	})
}

func fuzzWorkload(t *testing.T, cfg Config, ops []byte) {
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	interval := time.Duration(1)
	if !math.IsInf(l.Rate(), 1) {
		interval = time.Duration(max(math.Round(float64(time.Second)/l.Rate()), 1))
	}
	// Clock steps worth taking, capped: the bubble's clock must stay in 2000.
	bounded := func(d time.Duration) time.Duration { return min(d, 24*time.Hour) }
	steps := []time.Duration{0, 1, time.Millisecond, time.Second, bounded(interval),
		bounded(interval * time.Duration(min(l.Burst(), 1000)))}
	// The tokens granted by Allow and Try since the settings last changed,
	// and when they did: a fresh window with a full bucket at most.
	var granted int64
	since := time.Now()
	check := func() {
		if math.IsInf(l.Rate(), 1) {
			return
		}
		// 1/Rate is rounded to the nanosecond, as documented. From a
		// bucket of at most Burst tokens, elapsed e grants at most
		// Burst + floor(e / interval): exactly, no slack.
		interval := int64(max(math.Round(float64(time.Second)/l.Rate()), 1))
		limit := int64(l.Burst()) + int64(time.Since(since))/interval
		if granted > limit {
			t.Fatalf("granted %d tokens in %v at rate %v, burst %d: above %d", granted, time.Since(since), l.Rate(), l.Burst(), limit)
		}
	}
	reset := func() { granted, since = 0, time.Now() }
	var held []Reservation
	for _, op := range ops {
		arg := int(op >> 4)
		switch op & 15 {
		case 0, 1:
			if l.Allow() {
				granted++
			}
		case 2:
			n := arg % (l.Burst() + 2)
			if err := l.Try(n); err == nil && n > 0 {
				granted += int64(n)
			}
		case 3:
			r := l.ReserveN(time.Now(), arg%(l.Burst()+1)+1)
			if d := r.Delay(); d < 0 {
				t.Fatalf("negative delay %v", d)
			}
			if r.OK() && len(held) < 8 {
				held = append(held, r)
			}
			reset() // reservations take tokens outside the count
		case 4:
			if len(held) > 0 {
				held[0].Cancel()
				held = held[1:]
			}
			reset()
		case 5:
			ctx, cancel := context.WithTimeout(t.Context(), steps[arg%len(steps)])
			_ = l.WaitN(ctx, arg%3)
			cancel()
			reset()
		case 6:
			_ = l.SetRate([]float64{1, 1000, 0.5, math.Inf(1), 1e9}[arg%5])
			reset()
		case 7:
			_ = l.SetBurst(arg)
			reset()
		default:
			bubble.Sleep(steps[arg%len(steps)])
		}
		check()
	}
}
