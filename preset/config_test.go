package preset

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

// TestDefaults pins the defaults of the package doc's table, and checks
// that they pass the preset's own validation.
func TestDefaults(t *testing.T) {
	d := Config{}.WithDefaults()
	assert.Equal(t, Config{
		Timeout:        30 * time.Second,
		AttemptTimeout: 10 * time.Second,
		Retry:          retry.Config{MaxAttempts: 4, Delay: 2 * time.Second},
		Breaker:        breaker.Config{FailureRate: 0.1, TimeWindow: 30 * time.Second, MinimumCalls: 100, OpenDuration: 5 * time.Second},
	}, d)
	require.NoError(t, Config{}.Validate())
	require.NoError(t, d.Validate())

	delays, sum := nominalDelays(d.Retry)
	assert.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}, delays)
	assert.Equal(t, 14*time.Second, sum, "the default retries fit in the default timeout")
}

// TestWithDefaultsFieldByField: a field set keeps its value, and only the
// zero fields take defaults; the defaults of the breaker follow its rules.
func TestWithDefaultsFieldByField(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   breaker.Config
		want breaker.Config
	}{
		{"consecutive only", breaker.Config{ConsecutiveFailures: 3},
			breaker.Config{ConsecutiveFailures: 3, OpenDuration: 5 * time.Second}},
		{"count window", breaker.Config{CountWindow: 50},
			breaker.Config{FailureRate: 0.1, CountWindow: 50, MinimumCalls: 50, OpenDuration: 5 * time.Second}},
		{"slow calls", breaker.Config{SlowCallRate: 0.5, SlowCallThreshold: time.Second},
			breaker.Config{SlowCallRate: 0.5, SlowCallThreshold: time.Second, TimeWindow: 30 * time.Second, MinimumCalls: 100, OpenDuration: 5 * time.Second}},
		{"set", breaker.Config{FailureRate: 0.5, TimeWindow: time.Minute, MinimumCalls: 7, OpenDuration: time.Second},
			breaker.Config{FailureRate: 0.5, TimeWindow: time.Minute, MinimumCalls: 7, OpenDuration: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Config{Breaker: tt.in}.WithDefaults().Breaker)
		})
	}
	rl := &ratelimit.Config{Rate: 10}
	c := Config{RateLimit: rl, Timeout: time.Minute, Retry: retry.Config{MaxAttempts: 1}}.WithDefaults()
	assert.Equal(t, time.Minute, c.Timeout)
	assert.Equal(t, 1, c.Retry.MaxAttempts)
	assert.NotSame(t, rl, c.RateLimit, "the caller's rate limit is not aliased")
}

// TestValidate checks each rule: the error names every setting involved
// and its value.
func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cfg      Config
		mentions []string // each must appear in the error; none: valid
	}{
		{"defaults", Config{}, nil},

		// Each stage's own settings, with the stage's key.
		{"negative timeout", Config{Timeout: -time.Second}, []string{"preset: timeout -1s is negative"}},
		{"negative attempt timeout", Config{AttemptTimeout: -1}, []string{"preset: attemptTimeout -1ns is negative"}},
		{"retry", Config{Retry: retry.Config{MaxAttempts: -1}}, []string{"preset: retry: MaxAttempts -1 out of range [1,1000]"}},
		{"retry budget", Config{Retry: retry.Config{Budget: retry.BudgetConfig{Ratio: 11}}}, []string{"preset: retry: budget Ratio 11"}},
		{"retry attempt timeout", Config{Retry: retry.Config{AttemptTimeout: time.Second}},
			[]string{"preset: retry.attemptTimeout 1s must be left zero", "attemptTimeout"}},
		{"breaker", Config{Breaker: breaker.Config{FailureRate: 1.5}}, []string{"preset: breaker: FailureRate 1.5 out of range (0,1]"}},
		{"rate limit", Config{RateLimit: &ratelimit.Config{}}, []string{"preset: rateLimit: Rate 0 out of range"}},
		{"every stage at once", Config{Timeout: -1, Retry: retry.Config{Multiplier: 0.5}, Breaker: breaker.Config{MinimumCalls: -2}},
			[]string{"timeout -1ns", "retry: Multiplier 0.5", "breaker: MinimumCalls -2"}},
		{"disabled breaker is not checked", Config{DisableBreaker: true, Breaker: breaker.Config{FailureRate: 1.5, TimeWindow: time.Second}}, nil},

		// attemptTimeout and timeout.
		{"attempt beyond total", Config{AttemptTimeout: 40 * time.Second, Breaker: breaker.Config{TimeWindow: time.Minute + 20*time.Second}},
			[]string{"preset: attemptTimeout 40s exceeds timeout 30s (default)"}},
		{"default attempt beyond total", Config{Timeout: 5 * time.Second, Retry: retry.Config{Delay: time.Second}},
			[]string{"attemptTimeout 10s (default) exceeds timeout 5s"}},
		{"attempt equal to total", Config{AttemptTimeout: 30 * time.Second, Breaker: breaker.Config{TimeWindow: time.Minute}}, nil},

		// The breaker's window and attemptTimeout.
		{"window too short", Config{Breaker: breaker.Config{TimeWindow: 15 * time.Second}},
			[]string{"preset: breaker.timeWindow 15s is shorter than twice attemptTimeout 10s (default) (20s)"}},
		{"default window too short", Config{AttemptTimeout: 20 * time.Second},
			[]string{"breaker.timeWindow 30s (default) is shorter than twice attemptTimeout 20s (40s)"}},
		{"window twice the attempt", Config{Breaker: breaker.Config{TimeWindow: 20 * time.Second}}, nil},
		{"count window has no time", Config{AttemptTimeout: 30 * time.Second, Breaker: breaker.Config{CountWindow: 100}}, nil},
		{"no rate rule, no window rule", Config{Breaker: breaker.Config{ConsecutiveFailures: 5}, AttemptTimeout: 30 * time.Second}, nil},

		// The retries' delays and timeout.
		{"delays beyond timeout", Config{Retry: retry.Config{MaxAttempts: 6}},
			[]string{"preset: retry.maxAttempts 6 and retry.delay 2s (default) make 5 retries whose delays before jitter add up to 34s (2s+4s+8s+10s+10s), not less than timeout 30s (default)"}},
		{"delays equal to timeout", Config{Timeout: 14 * time.Second, AttemptTimeout: 7 * time.Second, Breaker: breaker.Config{TimeWindow: 14 * time.Second}},
			[]string{"retry.maxAttempts 4 (default) and retry.delay 2s (default)", "add up to 14s", "not less than timeout 14s"}},
		{"delays spelled out up to 6", Config{Timeout: time.Hour, Retry: retry.Config{MaxAttempts: 1000}},
			[]string{"retry.maxAttempts 1000", "999 retries", "add up to 2h46m14s", "(2s+4s+8s+10s+10s+10s+…)", "timeout 1h0m0s"}},
		{"delays beyond maxElapsed", Config{Retry: retry.Config{MaxElapsed: 5 * time.Second}},
			[]string{"add up to 14s", "not less than retry.maxElapsed 5s", "or raise retry.maxElapsed"}},
		{"constant delays", Config{Timeout: time.Second, AttemptTimeout: 100 * time.Millisecond,
			Retry: retry.Config{MaxAttempts: 11, Delay: 100 * time.Millisecond, Multiplier: 1}},
			[]string{"retry.maxAttempts 11 and retry.delay 100ms", "10 retries", "add up to 1s", "timeout 1s"}},
		{"decorrelated jitter counts Delay each", Config{Timeout: time.Second, AttemptTimeout: 100 * time.Millisecond,
			Retry: retry.Config{MaxAttempts: 5, Delay: 300 * time.Millisecond, Jitter: retry.DecorrelatedJitter}},
			[]string{"4 retries", "add up to 1.2s (300ms+300ms+300ms+300ms)"}},
		{"decorrelated jitter that fits", Config{Timeout: time.Second, AttemptTimeout: 100 * time.Millisecond,
			Retry: retry.Config{MaxAttempts: 4, Delay: 300 * time.Millisecond, Jitter: retry.DecorrelatedJitter}}, nil},
		{"no retries", Config{Timeout: time.Second, AttemptTimeout: time.Second, Breaker: breaker.Config{TimeWindow: 2 * time.Second},
			Retry: retry.Config{MaxAttempts: 1}}, nil},
		{"delay func is not judged", Config{Timeout: time.Second, AttemptTimeout: time.Second, Breaker: breaker.Config{TimeWindow: 2 * time.Second},
			Retry: retry.Config{DelayFunc: func(int, error) time.Duration { return time.Hour }}}, nil},

		// The breaker's minimum calls and the rate limit.
		{"minimum calls out of reach", Config{RateLimit: &ratelimit.Config{Rate: 2}},
			[]string{"preset: breaker.minimumCalls 100 (default) can never be reached: rateLimit.rate 2/s admits at most 60 calls in breaker.timeWindow 30s (default)",
				"lower breaker.minimumCalls to 60 or less", "lengthen breaker.timeWindow to 50s or more"}},
		{"fractional rate", Config{RateLimit: &ratelimit.Config{Rate: 0.3}, Breaker: breaker.Config{MinimumCalls: 10}},
			[]string{"breaker.minimumCalls 10 can never", "rateLimit.rate 0.3/s admits at most 9 calls", "to 33.334s or more"}},
		{"minimum calls just reached", Config{RateLimit: &ratelimit.Config{Rate: 10.0 / 3}}, nil},
		{"no limit", Config{RateLimit: &ratelimit.Config{Rate: math.Inf(1)}}, nil},
		{"count window fills at any rate", Config{RateLimit: &ratelimit.Config{Rate: 0.01}, Breaker: breaker.Config{CountWindow: 100}}, nil},
		{"no rate rule", Config{RateLimit: &ratelimit.Config{Rate: 0.01}, Breaker: breaker.Config{ConsecutiveFailures: 5}}, nil},
		{"disabled breaker", Config{RateLimit: &ratelimit.Config{Rate: 0.01}, DisableBreaker: true}, nil},

		// Several cross problems are reported together.
		{"all cross rules", Config{Timeout: 10 * time.Second, AttemptTimeout: 20 * time.Second, RateLimit: &ratelimit.Config{Rate: 1}},
			[]string{"attemptTimeout 20s exceeds timeout 10s", "breaker.timeWindow 30s (default) is shorter than twice attemptTimeout 20s",
				"breaker.minimumCalls 100 (default) can never be reached", "add up to 14s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.mentions) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, m := range tt.mentions {
				assert.Contains(t, err.Error(), m)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				assert.True(t, strings.HasPrefix(line, "preset: "), "%q lacks the prefix", line)
			}
		})
	}
}

// TestValidateKeepsStageErrors: the stage's own error stays reachable, for
// errors.Is and errors.As.
func TestValidateKeepsStageErrors(t *testing.T) {
	sentinel := errors.New("x")
	err := stageError("retry", "retry: ", sentinel)
	assert.ErrorIs(t, err, sentinel)
	assert.Equal(t, "preset: retry: x", err.Error())
}

func TestNominalDelays(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  retry.Config
		want []time.Duration
		sum  time.Duration
	}{
		{"retry's defaults", retry.Config{}, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, 300 * time.Millisecond},
		{"no retry", retry.Config{MaxAttempts: 1}, nil, 0},
		{"capped", retry.Config{MaxAttempts: 5, Delay: time.Second, Multiplier: 3, MaxDelay: 5 * time.Second},
			[]time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second}, 14 * time.Second},
		{"delay above the default cap", retry.Config{MaxAttempts: 3, Delay: 20 * time.Second},
			[]time.Duration{20 * time.Second, 20 * time.Second}, 40 * time.Second},
		{"saturated", retry.Config{MaxAttempts: 3, Delay: 1 << 62, MaxDelay: math.MaxInt64},
			[]time.Duration{1 << 62, math.MaxInt64}, math.MaxInt64},
		{"backoff", retry.Config{BackOff: func() retry.BackOff { return nil }}, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, sum := nominalDelays(tt.cfg)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.sum, sum)
		})
	}
}

// TestLoad decodes the same configuration from JSON and from YAML.
func TestLoad(t *testing.T) {
	want := Config{
		RateLimit:      &ratelimit.Config{Rate: 50, Burst: 10},
		Timeout:        5 * time.Second,
		AttemptTimeout: time.Second,
		Retry:          retry.Config{MaxAttempts: 3, Delay: 200 * time.Millisecond, Budget: retry.BudgetConfig{Ratio: 0.2}},
		Breaker:        breaker.Config{FailureRate: 0.5, TimeWindow: 10 * time.Second, MinimumCalls: 20},
	}
	for name, doc := range map[string]string{
		"json": `{"rateLimit": {"rate": 50, "burst": 10}, "timeout": "5s", "attemptTimeout": 1000000000,
			"retry": {"maxAttempts": 3, "delay": "200ms", "budget": {"ratio": 0.2}},
			"breaker": {"failureRate": 0.5, "timeWindow": "10s", "minimumCalls": 20}}`,
		// The YAML of the package doc.
		"yaml": `
rateLimit:
  rate: 50     # calls per second
  burst: 10
timeout: 5s
attemptTimeout: 1s
retry:
  maxAttempts: 3
  delay: 200ms
  budget:
    ratio: 0.2
breaker:
  failureRate: 0.5
  timeWindow: 10s
  minimumCalls: 20
`,
		"yaml flow": `{rateLimit: {rate: 50, burst: 10}, timeout: 5s, attemptTimeout: 1s,
  retry: {maxAttempts: 3, delay: 200ms, budget: {ratio: 0.2}},
  breaker: {failureRate: 0.5, timeWindow: 10s, minimumCalls: 20}}`,
		"yaml numbers": `
rateLimit: {rate: 5e1, burst: 0xa}
timeout: 5s
attemptTimeout: 1s
retry: {maxAttempts: 0o3, delay: 200ms, budget: {ratio: 2e-1}}
breaker: {failureRate: .5, timeWindow: 10s, minimumCalls: 20}
`,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Load([]byte(doc))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

// TestLoadPackageDocJSON loads the defaults as the package doc writes them
// out: they are the defaults.
func TestLoadPackageDocJSON(t *testing.T) {
	c, err := Load([]byte(`{
	  "timeout": "30s",
	  "attemptTimeout": "10s",
	  "retry": {"maxAttempts": 4, "delay": "2s"},
	  "breaker": {"failureRate": 0.1, "timeWindow": "30s", "minimumCalls": 100, "openDuration": "5s"}
	}`))
	require.NoError(t, err)
	assert.Equal(t, Config{}.WithDefaults(), c)
}

func TestLoadEmpty(t *testing.T) {
	for _, doc := range []string{"", "  \n", "# only a comment\n", "---\n", "null", "~", "{}", " {} "} {
		c, err := Load([]byte(doc))
		require.NoError(t, err, "%q", doc)
		assert.Equal(t, Config{}, c, "%q gives the defaults", doc)
	}
}

func TestLoadYAMLScalars(t *testing.T) {
	c, err := Load([]byte("rateLimit: {rate: .inf}\ntimeout: 2m\nretry: {maxAttempts: 1_0, multiplier: 1.5}\ndisableBreaker: true\n"))
	require.NoError(t, err)
	assert.True(t, math.IsInf(c.RateLimit.Rate, 1))
	assert.Equal(t, 10, c.Retry.MaxAttempts)
	assert.Equal(t, 1.5, c.Retry.Multiplier)
	assert.True(t, c.DisableBreaker)

	c, err = Load([]byte("rateLimit: null\nbreaker: {name: \"123\"}\n"))
	require.NoError(t, err)
	assert.Nil(t, c.RateLimit)
	assert.Equal(t, "123", c.Breaker.Name)

	// Aliases are expanded.
	c, err = Load([]byte("timeout: &t 40s\nbreaker: &b {timeWindow: *t}\nretry: {maxElapsed: *t}\n"))
	require.NoError(t, err)
	assert.Equal(t, 40*time.Second, c.Breaker.TimeWindow)
	assert.Equal(t, 40*time.Second, c.Retry.MaxElapsed)
}

// TestLoadUnknownKey: a misspelt key is an error naming its path from the
// top and its line, at every depth, in JSON and in YAML.
func TestLoadUnknownKey(t *testing.T) {
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"json top", `{"timeout": "1m", "atemptTimeout": "1s"}`, `preset: config: unknown field "atemptTimeout" (line 1)`},
		{"json one down", "{\n \"retry\": {\n  \"maxAttemps\": 2}}", `preset: config: unknown field "retry.maxAttemps" (line 3)`},
		{"json two down", "{\"retry\": {\"budget\":\n\n {\"windw\": \"1s\"}}}", `preset: config: unknown field "retry.budget.windw" (line 3)`},
		{"json breaker", `{"breaker": {"timeWindw": "1m"}}`, `preset: config: unknown field "breaker.timeWindw" (line 1)`},
		{"json rate limit", `{"rateLimit": {"rate": 1, "brust": 2}}`, `preset: config: unknown field "rateLimit.brust" (line 1)`},
		{"json case", `{"Retry": {"Budget": {"Windw": "1s"}}}`, `preset: config: unknown field "retry.budget.Windw" (line 1)`},
		{"yaml top", "timeout: 1m\natemptTimeout: 1s\n", `preset: config: unknown field "atemptTimeout" (line 2)`},
		{"yaml one down", "timeout: 1m\nretry:\n  delay: 1s\n  maxAttemps: 2\n", `preset: config: unknown field "retry.maxAttemps" (line 4)`},
		{"yaml two down", "retry:\n  budget:\n    ratio: 0.2\n    windw: 1s\n", `preset: config: unknown field "retry.budget.windw" (line 4)`},
		{"yaml rate limit", "rateLimit:\n  rate: 1\n  brust: 2\n", `preset: config: unknown field "rateLimit.brust" (line 3)`},
		{"yaml breaker", "breaker:\n\n  failureRte: 0.5\n", `preset: config: unknown field "breaker.failureRte" (line 3)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load([]byte(tt.doc))
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			assert.Equal(t, Config{}, c)

			if strings.HasPrefix(tt.name, "json") {
				// Config.UnmarshalJSON names the same path, without a line,
				// even through a json.Decoder that allows unknown fields.
				var c Config
				err := json.Unmarshal([]byte(tt.doc), &c)
				require.Error(t, err)
				assert.Equal(t, strings.TrimSuffix(tt.want, " (line "+tt.want[strings.LastIndex(tt.want, "(line ")+6:]), err.Error())
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		mentions  []string
	}{
		{"yaml duplicate", "timeout: 1m\nretry: {delay: 1s}\ntimeout: 2m\n", []string{`key "timeout" (line 3) given twice: it is "timeout" at line 1`}},
		{"yaml duplicate ignoring case", "retry:\n  delay: 1s\n  Delay: 2s\n", []string{`key "retry.Delay" (line 3) given twice: it is "retry.delay" at line 2`}},
		{"json duplicate", "{\"retry\": {\"delay\": \"1s\",\n \"delay\": \"2s\"}}", []string{`key "retry.delay" (line 2) given twice: it is "retry.delay" at line 1`}},
		{"json duplicate top", `{"timeout": "1s", "TIMEOUT": "2s"}`, []string{`key "TIMEOUT" (line 1) given twice`}},
		{"non-string key", "retry:\n  1: x\n", []string{`line 2: key "1" (!!int) at "retry" is not a string`}},
		{"bool key", "true: 1\n", []string{`line 1: key "true" (!!bool) at the top is not a string`}},
		{"null key", "~: 1\n", []string{`key "~" (!!null)`}},
		{"complex key", "? [a]\n: 1\n", []string{`key of kind sequence at the top is not a string`}},
		{"merge key", "base: &b {delay: 1s}\nretry:\n  <<: *b\n", []string{`line 3: merge key << at "retry" is not supported`}},
		{"alias cycle", "retry: &r\n  budget: *r\n", []string{`refers to itself`}},
		{"two documents", "timeout: 1s\n---\ntimeout: 2s\n", []string{"line 2: a second YAML document"}},
		{"bad yaml", "retry: [\n", []string{"preset: config: yaml:"}},
		{"custom tag", "timeout: !secret 1s\n", []string{`tag !secret at "timeout" is not supported`}},
		{"binary", "timeout: !!binary aGk=\n", []string{`tag !!binary at "timeout" is not supported`}},
		{"bad duration", "timeout: soon\n", []string{`invalid duration "soon"`}},
		{"bad duration nested", `{"retry": {"delay": "soon"}}`, []string{`preset: config: retry: config: invalid duration "soon"`}},
		{"bare number is nanoseconds", "timeout: 30\n", []string{"attemptTimeout 10s (default) exceeds timeout 30ns"}},
		{"nan rate", "rateLimit: {rate: .nan}\n", []string{`invalid rate "nan"`}},
		{"a list", "- 1\n- 2\n", []string{"preset: config: json: cannot unmarshal array"}},
		{"validation", "attemptTimeout: 40s\n", []string{"preset: attemptTimeout 40s exceeds timeout 30s (default)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load([]byte(tt.doc))
			require.Error(t, err)
			for _, m := range tt.mentions {
				assert.Contains(t, err.Error(), m)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "preset: "), err.Error())
			assert.Equal(t, Config{}, c)
		})
	}
}

// TestLoadAliasBomb: nested aliases that would expand to a billion values
// are refused, quickly.
func TestLoadAliasBomb(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		doc += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	_, err := Load([]byte(doc))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expands to more than 100000 values")
}

// TestMarshalRoundTrip: a Config marshals to a document that loads back
// equal.
func TestMarshalRoundTrip(t *testing.T) {
	for _, c := range []Config{
		{},
		Config{}.WithDefaults(),
		{RateLimit: &ratelimit.Config{Rate: math.Inf(1)}, DisableBreaker: true, Retry: retry.Config{MaxAttempts: 1}},
		{RateLimit: &ratelimit.Config{Rate: 50, Burst: 10}, Timeout: 5 * time.Second, AttemptTimeout: time.Second,
			Retry:   retry.Config{MaxAttempts: 3, Delay: 200 * time.Millisecond, Jitter: retry.EqualJitter, Budget: retry.BudgetConfig{Mode: retry.TokensMode}},
			Breaker: breaker.Config{Name: "x", SlowCallRate: 0.5, SlowCallThreshold: time.Second, CountWindow: 10}},
	} {
		b, err := json.Marshal(c)
		require.NoError(t, err)
		got, err := Load(b)
		require.NoError(t, err, "%s", b)
		assert.Equal(t, c, got, "%s", b)
	}
	b, err := json.Marshal(Config{}.WithDefaults())
	require.NoError(t, err)
	assert.JSONEq(t, `{"timeout":"30s","attemptTimeout":"10s","retry":{"maxAttempts":4,"delay":"2s"},
		"breaker":{"failureRate":0.1,"timeWindow":"30s","minimumCalls":100,"openDuration":"5s"}}`, string(b))
}
