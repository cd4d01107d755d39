package breaker

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// configErrorCase is an invalid Config and what its error must contain: each
// field at fault followed by its bad value ("FailureRate 1.5"), as an
// operator needs them to fix the file.
type configErrorCase struct {
	name string
	cfg  Config
	want []string
}

// configErrorCases covers every rule of Config.validate. group_test.go checks
// that NewGroup rejects them with the same errors.
var configErrorCases = []configErrorCase{
	{"ConsecutiveFailures negative", Config{ConsecutiveFailures: -1}, []string{"ConsecutiveFailures -1"}},

	{"FailureRate negative", Config{FailureRate: -0.1, CountWindow: 10}, []string{"FailureRate -0.1"}},
	{"FailureRate above 1", Config{FailureRate: 1.5, CountWindow: 10}, []string{"FailureRate 1.5"}},
	{"FailureRate NaN", Config{FailureRate: math.NaN(), CountWindow: 10}, []string{"FailureRate NaN"}},

	{"SlowCallRate negative", Config{SlowCallRate: -0.5, SlowCallThreshold: time.Second, CountWindow: 10}, []string{"SlowCallRate -0.5"}},
	{"SlowCallRate above 1", Config{SlowCallRate: 2, SlowCallThreshold: time.Second, CountWindow: 10}, []string{"SlowCallRate 2"}},
	{"SlowCallRate NaN", Config{SlowCallRate: math.NaN(), SlowCallThreshold: time.Second, CountWindow: 10}, []string{"SlowCallRate NaN"}},
	{"SlowCallRate without SlowCallThreshold", Config{SlowCallRate: 0.5, CountWindow: 10}, []string{"SlowCallRate 0.5", "SlowCallThreshold"}},
	{"SlowCallThreshold negative", Config{SlowCallThreshold: -time.Millisecond}, []string{"SlowCallThreshold -1ms"}},

	{"CountWindow negative", Config{CountWindow: -1}, []string{"CountWindow -1"}},
	{"CountWindow above limit", Config{FailureRate: 0.5, CountWindow: 100_001}, []string{"CountWindow 100001"}},
	{"TimeWindow negative", Config{TimeWindow: -time.Second}, []string{"TimeWindow -1s"}},
	{"both windows", Config{FailureRate: 0.5, CountWindow: 10, TimeWindow: time.Second}, []string{"CountWindow 10", "TimeWindow 1s"}},
	{"FailureRate without window", Config{FailureRate: 0.5}, []string{"FailureRate 0.5", "CountWindow", "TimeWindow"}},
	{"SlowCallRate without window", Config{SlowCallRate: 0.3, SlowCallThreshold: time.Second}, []string{"SlowCallRate 0.3", "CountWindow", "TimeWindow"}},

	{"TimeWindowBuckets negative", Config{FailureRate: 0.5, TimeWindow: time.Second, TimeWindowBuckets: -1}, []string{"TimeWindowBuckets -1"}},
	{"TimeWindowBuckets above limit", Config{FailureRate: 0.5, TimeWindow: 10 * time.Second, TimeWindowBuckets: 1001}, []string{"TimeWindowBuckets 1001"}},
	{"TimeWindowBuckets without TimeWindow", Config{TimeWindowBuckets: 5}, []string{"TimeWindowBuckets 5", "TimeWindow"}},
	{"TimeWindow too short for default buckets", Config{FailureRate: 0.5, TimeWindow: 5 * time.Millisecond}, []string{"TimeWindow 5ms", "10 buckets"}},
	{"TimeWindow too short for its buckets", Config{FailureRate: 0.5, TimeWindow: 10 * time.Millisecond, TimeWindowBuckets: 20}, []string{"TimeWindow 10ms", "20 buckets"}},

	{"MinimumCalls negative", Config{MinimumCalls: -1}, []string{"MinimumCalls -1"}},
	{"MinimumCalls above CountWindow", Config{FailureRate: 0.5, CountWindow: 10, MinimumCalls: 11}, []string{"MinimumCalls 11", "CountWindow 10"}},

	{"OpenDuration negative", Config{OpenDuration: -time.Second}, []string{"OpenDuration -1s"}},
	{"OpenBackoff below 1", Config{OpenBackoff: 0.5}, []string{"OpenBackoff 0.5"}},
	{"OpenBackoff negative", Config{OpenBackoff: -2}, []string{"OpenBackoff -2"}},
	{"OpenBackoff NaN", Config{OpenBackoff: math.NaN()}, []string{"OpenBackoff NaN"}},
	{"OpenBackoff +Inf", Config{OpenBackoff: math.Inf(1)}, []string{"OpenBackoff +Inf"}},
	{"OpenBackoff -Inf", Config{OpenBackoff: math.Inf(-1)}, []string{"OpenBackoff -Inf"}},
	{"MaxOpenDuration negative", Config{MaxOpenDuration: -time.Second}, []string{"MaxOpenDuration -1s"}},
	{"MaxOpenDuration below OpenDuration", Config{OpenDuration: 2 * time.Second, MaxOpenDuration: time.Second}, []string{"MaxOpenDuration 1s", "OpenDuration 2s"}},

	{"OpenJitter negative", Config{OpenJitter: -0.1}, []string{"OpenJitter -0.1"}},
	{"OpenJitter 1", Config{OpenJitter: 1}, []string{"OpenJitter 1"}},
	{"OpenJitter NaN", Config{OpenJitter: math.NaN()}, []string{"OpenJitter NaN"}},

	{"HalfOpenProbes negative", Config{HalfOpenProbes: -1}, []string{"HalfOpenProbes -1"}},
	{"HalfOpenProbes above limit", Config{HalfOpenProbes: 65536}, []string{"HalfOpenProbes 65536"}},
	{"HalfOpenSuccesses negative", Config{HalfOpenSuccesses: -1}, []string{"HalfOpenSuccesses -1"}},
	{"HalfOpenSuccesses above limit", Config{HalfOpenSuccesses: 65536}, []string{"HalfOpenSuccesses 65536"}},
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range configErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg)
			assert.Nil(t, b)
			require.Error(t, err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "breaker: "), "error %q lacks the package prefix", msg)
			for _, w := range tc.want {
				assert.Contains(t, msg, w, "the error must name the field and its bad value")
			}
		})
	}
}

// TestConfigLimitsAccepted checks the validator is not stricter than the
// documented limits: each configuration sits exactly on a bound.
func TestConfigLimitsAccepted(t *testing.T) {
	for name, cfg := range map[string]Config{
		"FailureRate 1":                       {FailureRate: 1, CountWindow: 10},
		"SlowCallRate 1":                      {SlowCallRate: 1, SlowCallThreshold: time.Nanosecond, TimeWindow: time.Second},
		"SlowCallThreshold without rate":      {SlowCallThreshold: time.Second},
		"CountWindow 100000, all calls":       {FailureRate: 0.5, CountWindow: 100_000, MinimumCalls: 100_000},
		"CountWindow 1":                       {FailureRate: 0.5, CountWindow: 1},
		"1000 buckets of 1ms":                 {FailureRate: 0.5, TimeWindow: time.Second, TimeWindowBuckets: 1000},
		"default buckets of 1ms":              {FailureRate: 0.5, TimeWindow: 10 * time.Millisecond},
		"one bucket":                          {FailureRate: 0.5, TimeWindow: time.Millisecond, TimeWindowBuckets: 1},
		"MinimumCalls above 10 on TimeWindow": {FailureRate: 0.5, TimeWindow: time.Second, MinimumCalls: 1_000_000},
		"OpenBackoff 1":                       {OpenBackoff: 1},
		"MaxOpenDuration = OpenDuration":      {OpenDuration: time.Second, MaxOpenDuration: time.Second},
		"OpenJitter just below 1":             {OpenJitter: 0.999},
		"65535 probes and successes":          {HalfOpenProbes: 65535, HalfOpenSuccesses: 65535},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			assert.NoError(t, err)
		})
	}
}

// TestConfigMaxOpenDurationBelowDefaultOpenDuration: a MaxOpenDuration below
// OpenDuration is rejected when OpenDuration is written out (5s), so it must
// be rejected too when OpenDuration is left to its documented default of 5s:
// the zero value of a field means its default. Instead New accepts it and the
// breaker stays open 1s, not the documented default 5s.
func TestConfigMaxOpenDurationBelowDefaultOpenDuration(t *testing.T) {
	_, err := New(Config{OpenDuration: 5 * time.Second, MaxOpenDuration: time.Second})
	require.Error(t, err, "precondition: the explicit form is rejected")

	b, err := New(Config{MaxOpenDuration: time.Second})
	if assert.Error(t, err, "MaxOpenDuration 1s is below the default OpenDuration 5s") {
		assert.Contains(t, err.Error(), "MaxOpenDuration")
		assert.Contains(t, err.Error(), "1s")
	} else {
		t.Logf("accepted: the breaker's open duration is %v", b.openDuration(1))
	}
}

// TestConfigHugeOpenDurationStaysOpen: an open duration near the largest
// time.Duration ("open until an operator resets it") must either be rejected
// by New or keep the breaker open. It must not wrap around to a negative
// duration that lets calls through at once.
func TestConfigHugeOpenDurationStaysOpen(t *testing.T) {
	for name, cfg := range map[string]Config{
		"OpenDuration MaxInt64":       {ConsecutiveFailures: 1, OpenDuration: math.MaxInt64},
		"OpenDuration MaxInt64 - 1µs": {ConsecutiveFailures: 1, OpenDuration: math.MaxInt64 - time.Microsecond},
		// MaxOpenDuration MaxInt64: "no cap". The second trip's period,
		// 1s × 1e12, is capped at MaxInt64: still centuries.
		"uncapped backoff": {ConsecutiveFailures: 1, OpenDuration: time.Second, OpenBackoff: 1e12, MaxOpenDuration: math.MaxInt64},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := New(cfg)
				if err != nil {
					return // rejecting it is fine
				}
				bubble.Sleep(time.Second)
				run(t, b, 1, errBoom)
				require.Equal(t, Open, b.State())
				if cfg.OpenBackoff > 1 {
					bubble.Sleep(cfg.OpenDuration)
					require.Equal(t, 1, run(t, b, 1, errBoom), "a probe after the first period")
					require.Equal(t, Open, b.State(), "the failed probe re-opens the breaker")
				}
				bubble.Sleep(time.Hour)
				_, err = b.Allow()
				assert.ErrorIs(t, err, ErrOpen, "an hour into an open period of centuries")
				assert.Equal(t, Open, b.State())
			})
		})
	}
}

// TestConfigMinimumBucketWidthAfterLongUptime: a TimeWindow of 1ms buckets is
// accepted, so it must keep counting successes however long the process
// runs. The breaker counts fast successes in bucket slot uint32(epoch) % nb
// but reads slot epoch % nb (window.go, timeWindow.add vs successesAt); past
// 2^32 buckets (49.7 days at 1ms, 497 days at 10ms) the slots differ unless
// nb is a power of two, successes vanish and a 10% failure rate trips a 50%
// breaker.
func TestConfigMinimumBucketWidthAfterLongUptime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{FailureRate: 0.5, TimeWindow: 10 * time.Millisecond, MinimumCalls: 1})
		bubble.Sleep(50 * 24 * time.Hour) // past 2^32 ms
		for range 20 {
			run(t, b, 9, nil)
			run(t, b, 1, errBoom) // 1 failure in 10 calls
			require.Equal(t, Closed, b.State(), "10%% failures tripped a 50%% breaker at uptime %v", time.Duration(b.now()))
			bubble.Sleep(10 * time.Millisecond) // a fresh window
		}
	})
}

func TestConfigDefaults(t *testing.T) {
	t.Run("zero", func(t *testing.T) {
		c := mustNew(t, Config{}).cfg
		assert.Equal(t, 5, c.ConsecutiveFailures)
		assert.Zero(t, c.FailureRate)
		assert.Zero(t, c.SlowCallRate)
		assert.Zero(t, c.CountWindow)
		assert.Zero(t, c.TimeWindow)
		assert.Zero(t, c.TimeWindowBuckets, "no buckets without a TimeWindow")
		assert.Equal(t, 10, c.MinimumCalls)
		assert.Equal(t, 5*time.Second, c.OpenDuration)
		assert.Equal(t, 1.0, c.OpenBackoff)
		assert.Equal(t, time.Minute, c.MaxOpenDuration)
		assert.Zero(t, c.OpenJitter)
		assert.Equal(t, 1, c.HalfOpenProbes)
		assert.Equal(t, 1, c.HalfOpenSuccesses)
		require.NotNil(t, c.Classify)
		assert.Equal(t, Failure, c.Classify(errBoom))
		assert.Equal(t, Ignore, c.Classify(context.Canceled))
		assert.Equal(t, Failure, c.Classify(context.DeadlineExceeded))
		assert.Nil(t, c.OnStateChange)
	})
	t.Run("HalfOpenSuccesses follows HalfOpenProbes", func(t *testing.T) {
		c := mustNew(t, Config{HalfOpenProbes: 4}).cfg
		assert.Equal(t, 4, c.HalfOpenProbes)
		assert.Equal(t, 4, c.HalfOpenSuccesses)
		c = mustNew(t, Config{HalfOpenProbes: 4, HalfOpenSuccesses: 2}).cfg
		assert.Equal(t, 2, c.HalfOpenSuccesses, "an explicit value is kept")
	})
	t.Run("MinimumCalls", func(t *testing.T) {
		assert.Equal(t, 10, mustNew(t, Config{FailureRate: 0.5, CountWindow: 50}).cfg.MinimumCalls)
		assert.Equal(t, 10, mustNew(t, Config{FailureRate: 0.5, CountWindow: 10}).cfg.MinimumCalls)
		assert.Equal(t, 5, mustNew(t, Config{FailureRate: 0.5, CountWindow: 5}).cfg.MinimumCalls, "capped at a small CountWindow")
		assert.Equal(t, 1, mustNew(t, Config{FailureRate: 0.5, CountWindow: 1}).cfg.MinimumCalls)
		assert.Equal(t, 10, mustNew(t, Config{FailureRate: 0.5, TimeWindow: time.Second}).cfg.MinimumCalls)
		assert.Equal(t, 3, mustNew(t, Config{FailureRate: 0.5, CountWindow: 5, MinimumCalls: 3}).cfg.MinimumCalls)
	})
	t.Run("TimeWindowBuckets", func(t *testing.T) {
		assert.Equal(t, 10, mustNew(t, Config{FailureRate: 0.5, TimeWindow: time.Second}).cfg.TimeWindowBuckets)
		assert.Equal(t, 4, mustNew(t, Config{FailureRate: 0.5, TimeWindow: time.Second, TimeWindowBuckets: 4}).cfg.TimeWindowBuckets)
	})
	t.Run("MaxOpenDuration follows a long OpenDuration", func(t *testing.T) {
		assert.Equal(t, 2*time.Minute, mustNew(t, Config{OpenDuration: 2 * time.Minute}).cfg.MaxOpenDuration)
		assert.Equal(t, time.Minute, mustNew(t, Config{OpenDuration: time.Second}).cfg.MaxOpenDuration)
	})
	t.Run("a rate rule replaces the consecutive-failure default", func(t *testing.T) {
		assert.Zero(t, mustNew(t, Config{FailureRate: 0.5, CountWindow: 100}).cfg.ConsecutiveFailures)
		assert.Zero(t, mustNew(t, Config{SlowCallRate: 0.5, SlowCallThreshold: time.Second, CountWindow: 100}).cfg.ConsecutiveFailures)
		assert.Equal(t, 3, mustNew(t, Config{ConsecutiveFailures: 3, FailureRate: 0.5, CountWindow: 100}).cfg.ConsecutiveFailures, "both rules when both are set")

		// And in behaviour: 9 failures in a row are below MinimumCalls 10.
		b := mustNew(t, Config{FailureRate: 0.5, CountWindow: 100})
		run(t, b, 9, errBoom)
		assert.Equal(t, Closed, b.State(), "no implicit ConsecutiveFailures 5")
		run(t, b, 1, errBoom)
		assert.Equal(t, Open, b.State())
	})
	t.Run("custom Classify is kept", func(t *testing.T) {
		c := mustNew(t, Config{Classify: func(error) Outcome { return Ignore }}).cfg
		assert.Equal(t, Ignore, c.Classify(errBoom))
	})
	t.Run("the caller's Config is not modified", func(t *testing.T) {
		cfg := Config{Name: "x", FailureRate: 0.5, CountWindow: 5, TimeWindowBuckets: 0, HalfOpenProbes: 3}
		want := cfg
		b := mustNew(t, cfg)
		assert.Equal(t, want, cfg)
		assert.Equal(t, 5, b.cfg.MinimumCalls, "precondition: defaults were applied to the breaker's copy")
		_, err := NewGroup(cfg, 1)
		require.NoError(t, err)
		assert.Equal(t, want, cfg)
	})
}

// operatorJSON is a configuration file as an operator would write it:
// durations as strings, one as integer nanoseconds. (An unknown field would
// be an error: see json_test.go.)
const operatorJSON = `{
	"name": "payments",
	"consecutiveFailures": 7,
	"failureRate": 0.5,
	"slowCallRate": 0.8,
	"slowCallThreshold": "250ms",
	"timeWindow": "1m",
	"timeWindowBuckets": 12,
	"minimumCalls": 20,
	"openDuration": 2000000000,
	"openBackoff": 2,
	"maxOpenDuration": "1m30s",
	"openJitter": 0.2,
	"halfOpenProbes": 3,
	"halfOpenSuccesses": 2
}`

// allJSONFields sets every field that has a JSON name (validity aside).
var allJSONFields = Config{
	Name:                "accounts",
	ConsecutiveFailures: 3,
	FailureRate:         0.25,
	SlowCallRate:        0.75,
	SlowCallThreshold:   1500 * time.Microsecond,
	CountWindow:         100,
	TimeWindow:          90 * time.Second,
	TimeWindowBuckets:   9,
	MinimumCalls:        17,
	OpenDuration:        1234567891 * time.Nanosecond,
	OpenBackoff:         1.5,
	MaxOpenDuration:     3 * time.Hour,
	OpenJitter:          0.125,
	HalfOpenProbes:      4,
	HalfOpenSuccesses:   6,
}

func TestConfigJSON(t *testing.T) {
	t.Run("operator file", func(t *testing.T) {
		var got Config
		require.NoError(t, json.Unmarshal([]byte(operatorJSON), &got))
		assert.Equal(t, Config{
			Name:                "payments",
			ConsecutiveFailures: 7,
			FailureRate:         0.5,
			SlowCallRate:        0.8,
			SlowCallThreshold:   250 * time.Millisecond,
			TimeWindow:          time.Minute,
			TimeWindowBuckets:   12,
			MinimumCalls:        20,
			OpenDuration:        2 * time.Second,
			OpenBackoff:         2,
			MaxOpenDuration:     90 * time.Second,
			OpenJitter:          0.2,
			HalfOpenProbes:      3,
			HalfOpenSuccesses:   2,
		}, got)
		_, err := New(got)
		assert.NoError(t, err, "the operator's file is a valid configuration")
	})

	t.Run("nested in a larger file", func(t *testing.T) {
		type file struct {
			Breakers map[string]Config `json:"breakers"`
			Default  Config            `json:"default"`
		}
		var f file
		require.NoError(t, json.Unmarshal([]byte(`{"breakers":{"db":{"openDuration":"250ms"}},"default":{"timeWindow":"10s","failureRate":0.5}}`), &f))
		assert.Equal(t, 250*time.Millisecond, f.Breakers["db"].OpenDuration)
		assert.Equal(t, 10*time.Second, f.Default.TimeWindow)
		assert.Equal(t, 0.5, f.Default.FailureRate)

		out, err := json.Marshal(f)
		require.NoError(t, err)
		assert.Contains(t, string(out), `"openDuration":"250ms"`)
		assert.Contains(t, string(out), `"timeWindow":"10s"`)
	})

	t.Run("marshal writes duration strings", func(t *testing.T) {
		out, err := json.Marshal(Config{OpenDuration: 5 * time.Second, SlowCallThreshold: 250 * time.Millisecond})
		require.NoError(t, err)
		assert.Contains(t, string(out), `"openDuration":"5s"`)
		assert.Contains(t, string(out), `"slowCallThreshold":"250ms"`)

		out, err = json.Marshal(&Config{MaxOpenDuration: 90 * time.Second, TimeWindow: time.Minute})
		require.NoError(t, err)
		assert.Contains(t, string(out), `"maxOpenDuration":"1m30s"`)
		assert.Contains(t, string(out), `"timeWindow":"1m0s"`)

		out, err = json.Marshal(Config{})
		require.NoError(t, err)
		assert.JSONEq(t, `{}`, string(out), "zero fields are omitted: they mean the defaults")
	})

	t.Run("round trip", func(t *testing.T) {
		// Guard: the fixture must really set every JSON field.
		rt := reflect.TypeFor[Config]()
		rv := reflect.ValueOf(allJSONFields)
		for i := range rt.NumField() {
			if rt.Field(i).Tag.Get("json") != "-" {
				require.False(t, rv.Field(i).IsZero(), "allJSONFields leaves %s unset", rt.Field(i).Name)
			}
		}

		out, err := json.Marshal(allJSONFields)
		require.NoError(t, err)
		var back Config
		require.NoError(t, json.Unmarshal(out, &back))
		assert.Equal(t, allJSONFields, back, "JSON: %s", out)

		// And the same through an indented, pointer-marshalled form.
		out, err = json.MarshalIndent(&allJSONFields, "", "  ")
		require.NoError(t, err)
		back = Config{}
		require.NoError(t, json.Unmarshal(out, &back))
		assert.Equal(t, allJSONFields, back)
	})

	t.Run("functions are not in the JSON", func(t *testing.T) {
		cfg := allJSONFields
		cfg.Classify = DefaultClassify
		cfg.OnStateChange = func(StateChange) {}
		out, err := json.Marshal(cfg)
		require.NoError(t, err)
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(out, &fields))
		var names []string
		for k := range fields {
			names = append(names, k)
		}
		assert.ElementsMatch(t, []string{
			"name", "consecutiveFailures", "failureRate", "slowCallRate", "slowCallThreshold",
			"countWindow", "timeWindow", "timeWindowBuckets", "minimumCalls", "openDuration",
			"openBackoff", "maxOpenDuration", "openJitter", "halfOpenProbes", "halfOpenSuccesses",
		}, names)
		assert.NotContains(t, strings.ToLower(string(out)), "classify")
		assert.NotContains(t, strings.ToLower(string(out)), "onstatechange")

		// The functions have no key: naming one is an error.
		for _, key := range []string{"classify", "onStateChange"} {
			err := json.Unmarshal([]byte(`{"`+key+`":"x","openDuration":"1s"}`), &cfg)
			assert.EqualError(t, err, `breaker: config: unknown field "`+key+`"`)
		}

		// Unmarshalling leaves the functions the caller set.
		require.NoError(t, json.Unmarshal([]byte(`{"openDuration":"1s"}`), &cfg))
		assert.NotNil(t, cfg.Classify)
		assert.NotNil(t, cfg.OnStateChange)
		assert.Equal(t, time.Second, cfg.OpenDuration)
	})

	t.Run("bad values", func(t *testing.T) {
		for _, tc := range []struct{ doc, want string }{
			{`{"openDuration":"5x"}`, `"5x"`},
			{`{"timeWindow":"fast"}`, `"fast"`},
			{`{"slowCallThreshold":"250"}`, `"250"`},
			{`{"maxOpenDuration":1.5}`, `1.5`},
			{`{"openDuration":true}`, `true`},
			{`{"openDuration":"1h","failureRate":"high"}`, `failureRate`},
			{`{"halfOpenProbes":1.5}`, `1.5`},
			{`{"name":`, ``},
		} {
			t.Run(tc.doc, func(t *testing.T) {
				var c Config
				err := json.Unmarshal([]byte(tc.doc), &c)
				require.Error(t, err)
				if strings.HasSuffix(tc.doc, ":") {
					return // a syntax error: encoding/json reports it before calling us
				}
				assert.True(t, strings.HasPrefix(err.Error(), "breaker: config:"), "error %q lacks the prefix", err)
				assert.Contains(t, err.Error(), tc.want)
			})
		}
	})
}

// FuzzConfig feeds arbitrary numeric configurations to New. New must not
// panic, must reject with an error prefixed "breaker: ", and a breaker it
// accepts must survive a short random workload (successes, failures, slow
// and ignored calls, probes held across state changes, overrides, clock
// steps in a synctest bubble) without panicking or leaving the five states.
func FuzzConfig(f *testing.F) {
	type seed struct {
		cfg Config
		ops []byte
	}
	seeds := []seed{
		{Config{}, []byte{1, 1, 1, 1, 1, 4, 0, 0}},
		{Config{FailureRate: 0.5, CountWindow: 10, MinimumCalls: 4}, []byte{1, 0, 1, 1, 1, 4, 20, 3, 3, 0, 7, 8}},
		{Config{FailureRate: 0.4, SlowCallRate: 0.5, SlowCallThreshold: 3 * time.Millisecond, TimeWindow: 50 * time.Millisecond, MinimumCalls: 5}, []byte{2, 2, 2, 1, 1, 4, 12, 4, 44, 0, 0, 2}},
		{Config{ConsecutiveFailures: 2, OpenDuration: time.Second, OpenBackoff: 2, MaxOpenDuration: 8 * time.Second, OpenJitter: 0.5, HalfOpenProbes: 3, HalfOpenSuccesses: 2}, []byte{1, 1, 4, 4, 3, 3, 3, 5, 5, 5, 1, 4, 28, 0, 0}},
		{Config{ConsecutiveFailures: 1, SlowCallThreshold: time.Millisecond, OpenDuration: time.Millisecond}, []byte{1, 4, 0, 2, 4, 0, 6, 14, 22, 7, 15, 23}},
		{Config{ConsecutiveFailures: 1, OpenDuration: math.MaxInt64}, []byte{1, 4, 36, 0}},
		{Config{FailureRate: 1, CountWindow: 100_000, MinimumCalls: 1, HalfOpenProbes: 65535}, []byte{1, 4, 4, 3, 3, 1}},
		{Config{FailureRate: 0.5, TimeWindow: time.Second, TimeWindowBuckets: 1000, MinimumCalls: 1}, []byte{0, 1, 4, 4, 1}},
		{Config{FailureRate: math.NaN(), CountWindow: 10}, nil},
		{Config{OpenBackoff: math.Inf(1)}, nil},
		{Config{TimeWindow: 5 * time.Millisecond, FailureRate: 0.5}, nil},
		{Config{HalfOpenProbes: -1, MinimumCalls: -5, CountWindow: -3}, nil},
	}
	for _, s := range seeds {
		c := s.cfg
		f.Add(c.ConsecutiveFailures, c.FailureRate, c.SlowCallRate, int64(c.SlowCallThreshold),
			c.CountWindow, int64(c.TimeWindow), c.TimeWindowBuckets, c.MinimumCalls,
			int64(c.OpenDuration), c.OpenBackoff, int64(c.MaxOpenDuration), c.OpenJitter,
			c.HalfOpenProbes, c.HalfOpenSuccesses, s.ops)
	}
	f.Fuzz(func(t *testing.T, consecutive int, failureRate, slowRate float64, slowThreshold int64,
		countWindow int, timeWindow int64, buckets, minCalls int,
		openDuration int64, backoff float64, maxOpen int64, jitter float64,
		probes, successes int, ops []byte) {
		cfg := Config{
			ConsecutiveFailures: consecutive,
			FailureRate:         failureRate,
			SlowCallRate:        slowRate,
			SlowCallThreshold:   time.Duration(slowThreshold),
			CountWindow:         countWindow,
			TimeWindow:          time.Duration(timeWindow),
			TimeWindowBuckets:   buckets,
			MinimumCalls:        minCalls,
			OpenDuration:        time.Duration(openDuration),
			OpenBackoff:         backoff,
			MaxOpenDuration:     time.Duration(maxOpen),
			OpenJitter:          jitter,
			HalfOpenProbes:      probes,
			HalfOpenSuccesses:   successes,
		}
		_, err := New(cfg)
		_, gerr := NewGroup(cfg, 1)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "breaker: ") {
				t.Fatalf("New(%+v): error %q lacks the package prefix", cfg, err)
			}
			if gerr == nil || gerr.Error() != err.Error() {
				t.Fatalf("New(%+v) = %q but NewGroup = %v", cfg, err, gerr)
			}
			return
		}
		if gerr != nil {
			t.Fatalf("New accepted %+v but NewGroup: %v", cfg, gerr)
		}
		if len(ops) > 48 {
			ops = ops[:48]
		}
		synctest.Test(t, func(t *testing.T) {
			fuzzWorkload(t, cfg, ops)
		})
	})
}

// fuzzWorkload runs ops against a breaker built from cfg, inside a bubble.
func fuzzWorkload(t *testing.T, cfg Config, ops []byte) {
	validState := func(what string, s State) {
		if s > Disabled {
			t.Fatalf("%s: state %d is none of the five states", what, s)
		}
	}
	cfg.OnStateChange = func(c StateChange) {
		validState("OnStateChange from", c.From)
		validState("OnStateChange to", c.To)
		if c.From == c.To {
			t.Fatalf("OnStateChange(%+v): not a change", c)
		}
		if c.Cause.String() == "unknown" {
			t.Fatalf("OnStateChange(%+v): no cause", c)
		}
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New accepted %+v outside the bubble but not inside: %v", cfg, err)
	}
	// Clock steps worth taking: tiny, around a bucket, the open duration and
	// the thresholds (capped: the bubble's clock is an int64 too).
	bounded := func(d time.Duration) time.Duration { return min(max(d, time.Nanosecond), 24*time.Hour) }
	c := b.cfg
	steps := []time.Duration{
		time.Nanosecond, time.Millisecond, time.Second,
		bounded(c.OpenDuration), bounded(c.OpenDuration) + time.Nanosecond,
		bounded(c.MaxOpenDuration), bounded(c.SlowCallThreshold),
		bounded(c.TimeWindow / time.Duration(max(c.TimeWindowBuckets, 1))), bounded(c.TimeWindow),
	}
	var held []Permit
	for i, op := range ops {
		arg := int(op >> 3)
		switch op & 7 {
		case 0: // a success
			if p, err := b.Allow(); err == nil {
				p.Done(nil)
			}
		case 1: // a failure
			if p, err := b.Allow(); err == nil {
				p.Done(errBoom)
			}
		case 2: // a slow call, successful or not
			if p, err := b.Allow(); err == nil {
				bubble.Sleep(steps[arg%len(steps)])
				if arg&1 == 0 {
					p.Done(nil)
				} else {
					p.Done(errBoom)
				}
			}
		case 3: // admit a call and hold it (half-open probes stay in flight)
			if p, err := b.Allow(); err == nil && len(held) < 8 {
				held = append(held, p)
			} else if err == nil {
				p.Done(nil)
			}
		case 4: // let time pass
			bubble.Sleep(steps[arg%len(steps)])
		case 5: // finish the oldest held call with some outcome
			if len(held) > 0 {
				p := held[0]
				held = held[1:]
				switch arg % 4 {
				case 0:
					p.Done(nil)
				case 1:
					p.Done(errBoom)
				case 2:
					p.Done(context.Canceled)
				default:
					p.Record(Outcome(arg)) // any value: beyond Ignore is a failure
				}
			}
		case 6: // an ignored call, or one through Do
			if arg&1 == 0 {
				if p, err := b.Allow(); err == nil {
					p.Done(context.Canceled)
				}
			} else {
				_ = b.Do(context.Background(), func(context.Context) error {
					if arg&2 != 0 {
						return errBoom
					}
					return nil
				})
			}
		case 7: // an operator override
			switch arg % 4 {
			case 0:
				b.ForceOpen()
			case 1:
				b.Disable()
			default:
				b.Reset()
			}
		}
		validState("State", b.State())
		m := b.Metrics()
		validState("Metrics", m.State)
		if m.Calls != m.Successes+m.Failures+m.Ignored {
			t.Fatalf("op %d: metrics do not add up: %+v", i, m)
		}
	}
	for _, p := range held {
		p.Done(nil)
	}
	validState("State", b.State())
}
