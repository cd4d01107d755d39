package throttle

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
)

// TestConfigErrors: each bad field is refused with an error naming it and
// its value; nothing panics.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{K: 0.5}, "throttle: K 0.5 out of range [1,1000]"},
		{Config{K: -1}, "throttle: K -1 out of range [1,1000]"},
		{Config{K: 1001}, "throttle: K 1001 out of range [1,1000]"},
		{Config{K: math.NaN()}, "throttle: K NaN out of range [1,1000]"},
		{Config{K: math.Inf(1)}, "throttle: K +Inf out of range [1,1000]"},
		{Config{Window: time.Millisecond}, "throttle: Window 1ms out of range [1s,1h0m0s]"},
		{Config{Window: -time.Second}, "throttle: Window -1s out of range [1s,1h0m0s]"},
		{Config{Window: 2 * time.Hour}, "throttle: Window 2h0m0s out of range [1s,1h0m0s]"},
		{Config{MaxProbability: -0.1}, "throttle: MaxProbability -0.1 out of range (0,1]"},
		{Config{MaxProbability: 1.5}, "throttle: MaxProbability 1.5 out of range (0,1]"},
		{Config{MaxProbability: math.NaN()}, "throttle: MaxProbability NaN out of range (0,1]"},
		{Config{LiftAfter: -1}, "throttle: LiftAfter -1 out of range [1,1048576]"},
		{Config{NoLift: true, LiftAfter: 2}, "throttle: NoLift set with LiftAfter 2; choose one"},
	} {
		th, err := New(tc.cfg)
		assert.Nil(t, th)
		assert.EqualError(t, err, tc.want)
	}
}

// TestConfigDefaults: the zero Config is K 2, a 2-minute window sampled
// to 1s, a cap of 0.9 and seawall.IsOverload; the limits are accepted.
func TestConfigDefaults(t *testing.T) {
	th, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, 2.0, th.k)
	assert.Equal(t, int64(2*time.Minute), th.win.win)
	assert.Equal(t, int64(time.Second), th.win.width)
	assert.Equal(t, 0.9, th.maxP)
	assert.Equal(t, uint64(1), th.liftAfter)
	assert.True(t, th.rejected(refusal))
	th, err = New(Config{NoLift: true})
	require.NoError(t, err)
	assert.Zero(t, th.liftAfter, "NoLift")
	for _, cfg := range []Config{
		{K: 1, Window: time.Second, MaxProbability: math.SmallestNonzeroFloat64},
		{K: 1000, Window: time.Hour, MaxProbability: 1},
	} {
		_, err := New(cfg)
		assert.NoError(t, err, "%+v", cfg)
	}
}

const operatorJSON = `{"k": 1.5, "window": "1m", "maxProbability": 0.8}`

func TestConfigJSON(t *testing.T) {
	jsontest.Decodes(t, operatorJSON, Config{K: 1.5, Window: time.Minute, MaxProbability: 0.8})
	jsontest.Decodes(t, `{"K":3,"WINDOW":60000000000}`, Config{K: 3, Window: time.Minute})
	for _, tc := range []struct{ doc, key string }{
		{`{"windw":"1m"}`, "windw"},
		{`{"k":2,"maxProbabilty":0.5}`, "maxProbabilty"},
		{`{"rejected":true}`, "rejected"},
		{`{"rand":1}`, "rand"},
	} {
		jsontest.UnknownField[Config](t, tc.doc, `throttle: config: unknown field "`+tc.key+`"`, tc.key)
	}
}

// FuzzConfigJSON: decoding agrees both ways and round-trips, and New
// returns a throttle or an error prefixed "throttle: ", never panics.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{operatorJSON, `{}`, `null`, `{"k":0.5}`, `{"window":"1h1s"}`,
		`{"maxProbability":2}`, `{"k":1e308}`, `{"windw":"1m"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := jsontest.Decode[Config](t, "throttle: config: ", b)
		if !ok {
			return
		}
		th, err := New(c)
		if err != nil {
			if th != nil || !strings.HasPrefix(err.Error(), "throttle: ") {
				t.Fatalf("New(%+v) = %v, %v", c, th, err)
			}
			return
		}
		if p, err := th.Allow(); err == nil {
			p.Done(nil)
		}
	})
}
