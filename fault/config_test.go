package fault

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // the field at fault followed by its bad value
	}{
		{"ErrorRate negative", Config{ErrorRate: -0.1}, "ErrorRate -0.1"},
		{"ErrorRate above 1", Config{ErrorRate: 1.5}, "ErrorRate 1.5"},
		{"ErrorRate NaN", Config{ErrorRate: math.NaN()}, "ErrorRate NaN"},
		{"LatencyRate above 1", Config{LatencyRate: 2, Latency: 1}, "LatencyRate 2"},
		{"LatencyRate Inf", Config{LatencyRate: math.Inf(1), Latency: 1}, "LatencyRate +Inf"},
		{"LatencyRate without Latency", Config{LatencyRate: 0.2}, "LatencyRate 0.2"},
		{"Latency negative", Config{Latency: -time.Millisecond}, "Latency -1ms"},
		{"Jitter negative", Config{Jitter: -time.Second}, "Jitter -1s"},
		{"Jitter overflows", Config{Latency: math.MaxInt64, Jitter: 1}, "Jitter 1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, err := New(tc.cfg)
			assert.Nil(t, i)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "fault: "), "error %q lacks the package prefix", err)
			assert.Contains(t, err.Error(), tc.want, "the error must name the field and its bad value")
		})
	}
}

func TestConfigAccepted(t *testing.T) {
	for name, cfg := range map[string]Config{
		"zero":             {},
		"rates at 1":       {ErrorRate: 1, LatencyRate: 1, Latency: 1},
		"jitter only":      {LatencyRate: 0.5, Jitter: time.Second},
		"latency at limit": {LatencyRate: 1, Latency: math.MaxInt64},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			assert.NoError(t, err)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, ErrInjected, c.Err)
	i := mustNew(t, Config{})
	assert.False(t, i.Enabled(), "off by default")
	assert.NotNil(t, i.rnd)
}

// operatorJSON is a game day's faults as an operator would write them.
const operatorJSON = `{
	"enabled": true,
	"errorRate": 0.3,
	"latencyRate": 0.2,
	"latency": "200ms",
	"jitter": "50ms"
}`

func TestConfigJSON(t *testing.T) {
	want := Config{Enabled: true, ErrorRate: 0.3, LatencyRate: 0.2, Latency: 200 * time.Millisecond, Jitter: 50 * time.Millisecond}
	jsontest.Decodes(t, operatorJSON, want)

	b, err := json.Marshal(want)
	require.NoError(t, err)
	assert.JSONEq(t, `{"enabled":true,"errorRate":0.3,"latencyRate":0.2,"latency":"200ms","jitter":"50ms"}`, string(b))

	var c Config
	require.NoError(t, json.Unmarshal([]byte(`{"latency":1500000000}`), &c))
	assert.Equal(t, 1500*time.Millisecond, c.Latency)

	b, err = json.Marshal(Config{})
	require.NoError(t, err)
	assert.Equal(t, `{}`, string(b))
}

func TestConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"errorRtae":0.3}`, "errorRtae"},
		{`{"latency":"1s","jiter":"1s"}`, "jiter"},
		{`{"err":"boom"}`, "err"},
		{`{"select":true}`, "select"},
	} {
		t.Run(tt.doc, func(t *testing.T) {
			jsontest.UnknownField[Config](t, tt.doc, `fault: config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

// FuzzConfigJSON decodes arbitrary bytes into a Config. Decoding directly
// and through json.Unmarshal must agree; a decoded Config must survive its
// JSON round trip; and New must return an Injector or an error prefixed
// "fault: ", never panic; an Injector it returns must not panic either.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		operatorJSON, `{}`, `null`, `{"errorRate":1.5}`, `{"latencyRate":0.5}`,
		`{"latency":"-1s"}`, `{"latency":9223372036854775807,"jitter":1}`, `{"errorRtae":1}`,
		`{"enabled":true,"errorRate":1,"latencyRate":1,"latency":"1ns","jitter":"1ns"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := jsontest.Decode[Config](t, "fault: config: ", b)
		if !ok {
			return
		}
		if c.Latency+c.Jitter > time.Millisecond && c.Latency >= 0 && c.Jitter >= 0 {
			c.Latency, c.Jitter = 0, time.Millisecond // keep the fuzzer from waiting
		}
		i, err := New(c)
		if err != nil {
			if i != nil || !strings.HasPrefix(err.Error(), "fault: ") {
				t.Fatalf("New(%+v) = %v, %v", c, i, err)
			}
			return
		}
		i.Enable()
		_ = i.Apply(t.Context())
	})
}
