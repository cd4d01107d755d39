package adaptive

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
)

// TestConfigInvalid: New rejects each bad field with an error that names
// the field and the value, and returns no limiter.
func TestConfigInvalid(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Algorithm: "vegas"}, `adaptive: Algorithm "vegas" is neither "gradient" nor "aimd"`},
		{Config{MinLimit: -1}, "adaptive: MinLimit -1 out of range [1,1048576]"},
		{Config{MaxLimit: 1<<20 + 1}, "adaptive: MaxLimit 1048577 out of range [1,1048576]"},
		{Config{InitialLimit: -5}, "adaptive: InitialLimit -5 out of range [1,1048576]"},
		{Config{MinLimit: 10, MaxLimit: 5}, "adaptive: MinLimit 10 above MaxLimit 5"},
		{Config{MinLimit: 2000}, ""}, // MaxLimit defaults to MinLimit when above 1000: valid
		{Config{InitialLimit: 50, MaxLimit: 40}, "adaptive: InitialLimit 50 out of range [MinLimit 1, MaxLimit 40]"},
		{Config{InitialLimit: 2, MinLimit: 3}, "adaptive: InitialLimit 2 out of range [MinLimit 3, MaxLimit 1000]"},
		{Config{Window: time.Microsecond}, "adaptive: Window 1µs out of range [1ms,1m]"},
		{Config{Window: -time.Second}, "adaptive: Window -1s out of range [1ms,1m]"},
		{Config{Window: 2 * time.Minute}, "adaptive: Window 2m0s out of range [1ms,1m]"},
		{Config{MinSamples: -1}, "adaptive: MinSamples -1 out of range [1,1048576]"},
		{Config{Smoothing: 1.5}, "adaptive: Smoothing 1.5 out of range (0,1]"},
		{Config{Smoothing: -0.1}, "adaptive: Smoothing -0.1 out of range (0,1]"},
		{Config{Smoothing: math.NaN()}, "adaptive: Smoothing NaN out of range (0,1]"},
		{Config{Percentile: 1}, "adaptive: Percentile 1 out of range [0,1) (0 means the mean)"},
		{Config{Percentile: -0.5}, "adaptive: Percentile -0.5 out of range [0,1) (0 means the mean)"},
		{Config{Percentile: math.Inf(1)}, "adaptive: Percentile +Inf out of range [0,1) (0 means the mean)"},
		{Config{LatencyThreshold: 1}, "adaptive: LatencyThreshold 1 is not above 1"},
		{Config{LatencyThreshold: -2}, "adaptive: LatencyThreshold -2 is not above 1"},
		{Config{Backoff: 1}, "adaptive: Backoff 1 out of range (0,1)"},
		{Config{Backoff: -0.5}, "adaptive: Backoff -0.5 out of range (0,1)"},
		{Config{ProbeInterval: time.Millisecond}, "adaptive: ProbeInterval 1ms out of range [100ms,1h]"},
		{Config{ProbeInterval: 2 * time.Hour}, "adaptive: ProbeInterval 2h0m0s out of range [100ms,1h]"},
		{Config{ProbeSamples: -3}, "adaptive: ProbeSamples -3 out of range [1,1048576]"},
		{Config{MaxBaselineRise: 0.5}, "adaptive: MaxBaselineRise 0.5 is below 1"},
		{Config{MaxBaselineRise: math.NaN()}, "adaptive: MaxBaselineRise NaN is below 1"},
		{Config{MaxWaiting: -1}, "adaptive: MaxWaiting -1 out of range [0,1048576]"},
		{Config{NoQueue: true, MaxWaiting: 4}, "adaptive: NoQueue set with MaxWaiting 4 or MaxWait 0s; choose one"},
		{Config{NoQueue: true, MaxWait: time.Second}, "adaptive: NoQueue set with MaxWaiting 0 or MaxWait 1s; choose one"},
		{Config{MaxWaiting: 1<<20 + 1}, "adaptive: MaxWaiting 1048577 out of range [0,1048576]"},
		{Config{MaxWait: -time.Millisecond}, "adaptive: MaxWait -1ms is negative"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			l, err := New(tt.cfg)
			if tt.want == "" {
				require.NoError(t, err)
				require.NotNil(t, l)
				return
			}
			require.EqualError(t, err, tt.want)
			assert.Nil(t, l)
		})
	}
}

// TestConfigDefaults: the zero Config gets the documented defaults, and a
// default InitialLimit is kept inside the limits given.
func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, Config{
		Algorithm: Gradient, MinLimit: 1, MaxLimit: 1000, InitialLimit: 20,
		Window: 100 * time.Millisecond, MinSamples: 20, Smoothing: 0.5,
		LatencyThreshold: 2, Backoff: 0.9, ProbeInterval: 10 * time.Second,
		ProbeSamples: 100, MaxBaselineRise: 2, MaxWaiting: 1000,
	}, c)
	c, err = Config{NoQueue: true}.withDefaults()
	require.NoError(t, err)
	assert.Zero(t, c.MaxWaiting, "NoQueue: no queue")

	c, err = Config{MaxLimit: 8}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 8, c.InitialLimit)
	c, err = Config{MinLimit: 30}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, 30, c.InitialLimit)
	assert.Equal(t, 1000, c.MaxLimit)

	l, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, 10, l.Limit(), "the first baseline is measured at half the initial limit")
	assert.True(t, l.Metrics().Probing)
}

// operatorJSON is a Config as an operator would write it in a file.
const operatorJSON = `{
	"algorithm": "aimd",
	"minLimit": 2,
	"maxLimit": 200,
	"initialLimit": 10,
	"window": "250ms",
	"minSamples": 30,
	"smoothing": 0.3,
	"percentile": 0.9,
	"latencyThreshold": 1.5,
	"backoff": 0.8,
	"probeInterval": "30s",
	"probeSamples": 64,
	"maxBaselineRise": 1.5,
	"maxWaiting": 16,
	"maxWait": "20ms"
}`

// TestConfigJSON: a Config decodes from an operator's file, durations as Go
// duration strings, and survives a round trip; the zero Config encodes as
// {}.
func TestConfigJSON(t *testing.T) {
	want := Config{
		Algorithm: AIMD, MinLimit: 2, MaxLimit: 200, InitialLimit: 10,
		Window: 250 * time.Millisecond, MinSamples: 30, Smoothing: 0.3, Percentile: 0.9,
		LatencyThreshold: 1.5, Backoff: 0.8, ProbeInterval: 30 * time.Second, ProbeSamples: 64,
		MaxBaselineRise: 1.5, MaxWaiting: 16, MaxWait: 20 * time.Millisecond,
	}
	jsontest.Decodes(t, operatorJSON, want)
	got, ok := jsontest.Decode[Config](t, "adaptive: config: ", []byte(operatorJSON))
	require.True(t, ok)
	assert.Equal(t, want, got)
	_, err := New(got)
	require.NoError(t, err)

	var zero Config
	b, err := zero.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(b))
	jsontest.Decodes(t, `{"window":100000000,"maxWait":"1s"}`, Config{Window: 100 * time.Millisecond, MaxWait: time.Second})
}

// TestConfigJSONUnknownField: a key that names no field is an error naming
// it, however the Config is decoded.
func TestConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"maxLimt":10}`, "maxLimt"},
		{`{"window":"1s","probeIntervall":"1s"}`, "probeIntervall"}, // next to a duration
		{`{"comment":"an operator's note"}`, "comment"},
		{`{"max_limit":5}`, "max_limit"},
	} {
		t.Run(tt.doc, func(t *testing.T) {
			jsontest.UnknownField[Config](t, tt.doc, `adaptive: config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

// FuzzConfigJSON decodes arbitrary bytes into a Config. Decoding directly
// and through json.Unmarshal must agree; a decoded Config must survive its
// JSON round trip; and New must return a limiter or an error prefixed
// "adaptive: ", never panic, and a limiter must admit and record.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		operatorJSON, `{}`, `null`, `{"maxLimit":1,"minLimit":1}`, `{"smoothing":1e308}`,
		`{"percentile":-0}`, `{"window":"-1s"}`, `{"algorithm":""}`, `{"maxWiat":"1s"}`,
		`{"minLimit":1048576,"maxLimit":1048576}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := jsontest.Decode[Config](t, "adaptive: config: ", b)
		if !ok {
			return
		}
		l, err := New(c)
		if err != nil {
			if l != nil || !strings.HasPrefix(err.Error(), "adaptive: ") {
				t.Fatalf("New(%+v) = %v, %v", c, l, err)
			}
			return
		}
		if p, ok := l.TryAcquire(); ok {
			p.Done(nil)
		}
	})
}
