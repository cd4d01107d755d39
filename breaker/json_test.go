package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
)

// TestConfigJSONUnknownField: a key that names no field is an error naming
// it, however the Config is decoded.
func TestConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"failureRte":0.5,"countWindow":10}`, "failureRte"},
		{`{"openDuraton":"1s"}`, "openDuraton"}, // a duration, decoded through its override
		{`{"timeWindow":"1m","timeWindowBucket":6}`, "timeWindowBucket"},
		{`{"comment":"an operator's note"}`, "comment"},
		{`{"name ":"x"}`, "name "},
		{`{"classify":"x"}`, "classify"}, // a function has no key
		{`{"consecutiveFailures":3,"Consecutive_Failures":4}`, "Consecutive_Failures"},
	} {
		t.Run(tt.doc, func(t *testing.T) {
			jsontest.UnknownField[Config](t, tt.doc, `breaker: config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

// TestConfigJSONCase: keys match field names ignoring case, as encoding/json
// matches them; what matters is that no key is dropped.
func TestConfigJSONCase(t *testing.T) {
	const doc = `{"FailureRate":0.5,"COUNTWINDOW":20,"OpenDuration":"2s","minimumcalls":5}`
	want := Config{FailureRate: 0.5, CountWindow: 20, OpenDuration: 2 * time.Second, MinimumCalls: 5}
	jsontest.Decodes(t, doc, want)
}

// TestConfigFloatsFinite: no float field of Config means anything when
// infinite, so infinity is refused in Go (by New) and in JSON (which has no
// infinite number, and no "inf" string for these fields), as NaN is.
func TestConfigFloatsFinite(t *testing.T) {
	// A config valid but for the field under test.
	base := Config{CountWindow: 10, SlowCallThreshold: time.Second}
	for _, field := range []string{"FailureRate", "SlowCallRate", "OpenBackoff", "OpenJitter"} {
		key := strings.ToLower(field[:1]) + field[1:]
		t.Run(field, func(t *testing.T) {
			for _, v := range []float64{math.Inf(1), math.Inf(-1), math.NaN()} {
				cfg := base
				reflect.ValueOf(&cfg).Elem().FieldByName(field).SetFloat(v)
				_, err := New(cfg)
				require.Error(t, err, "%s %v", field, v)
				assert.Contains(t, err.Error(), "breaker: "+field+" "+fmt.Sprint(v))
			}
			for _, doc := range []string{`{"` + key + `":"inf"}`, `{"` + key + `":"+Inf"}`, `{"` + key + `":1e999}`, `{"` + key + `":"NaN"}`} {
				var c Config
				err := json.Unmarshal([]byte(doc), &c)
				require.Error(t, err, doc)
				assert.True(t, strings.HasPrefix(err.Error(), "breaker: config: "), err.Error())
				assert.Contains(t, err.Error(), key)
			}
		})
	}
}

// fuzzSeeds are configuration files, valid and not, for FuzzConfigJSON.
var fuzzSeeds = []string{
	operatorJSON,
	`{}`,
	`null`,
	`{"failureRate":0.5,"countWindow":10,"minimumCalls":4}`,
	`{"slowCallRate":0.5,"slowCallThreshold":"3ms","timeWindow":"50ms","minimumCalls":5}`,
	`{"consecutiveFailures":2,"openDuration":"1s","openBackoff":2,"maxOpenDuration":"8s","openJitter":0.5,"halfOpenProbes":3,"halfOpenSuccesses":2}`,
	`{"FailureRate":1,"TimeWindow":"10s","TimeWindowBuckets":1000}`,
	`{"failureRte":0.5}`,
	`{"openBackoff":"inf"}`,
	`{"openDuration":-1,"maxOpenDuration":"-1s"}`,
	`{"timeWindow":"1h","timeWindowBuckets":0,"countWindow":100000}`,
	`{"halfOpenProbes":65535,"halfOpenSuccesses":65536}`,
	`{"name":"\u00fc\u003c","openJitter":0.999999}`,
}

// FuzzConfigJSON decodes arbitrary bytes into a Config. Decoding directly
// and through json.Unmarshal must agree; a decoded Config must survive its
// JSON round trip unchanged; and New must return a breaker or an error
// prefixed "breaker: ", never panic.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := jsontest.Decode[Config](t, "breaker: config: ", b)
		if !ok {
			return
		}
		br, err := New(c)
		if err != nil {
			if br != nil || !strings.HasPrefix(err.Error(), "breaker: ") {
				t.Fatalf("New(%+v) = %v, %v", c, br, err)
			}
			return
		}
		// An accepted breaker works: a call through it does not panic.
		p, err := br.Allow()
		if err == nil {
			p.Done(nil)
		}
	})
}

func TestStateAndCauseJSONAreNames(t *testing.T) {
	b, err := New(Config{ConsecutiveFailures: 1})
	require.NoError(t, err)
	_ = b.Do(t.Context(), func(context.Context) error { return errors.New("boom") })
	out, err := json.Marshal(b.Metrics())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Equal(t, "open", m["state"])
	assert.Equal(t, map[string]any{"closed>open": 1.0}, m["moves"])

	sc, err := json.Marshal(StateChange{Name: "a", From: HalfOpen, To: Open, Cause: CauseProbeFailed})
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"a","from":"half-open","to":"open","cause":"probe-failed","counts":{"consecutiveFailures":0,"calls":0,"failures":0,"slowCalls":0}}`, string(sc))
	var back StateChange
	require.NoError(t, json.Unmarshal(sc, &back))
	assert.Equal(t, StateChange{Name: "a", From: HalfOpen, To: Open, Cause: CauseProbeFailed}, back)
	assert.Error(t, json.Unmarshal([]byte(`{"from":"ajar"}`), &back))
	assert.Error(t, json.Unmarshal([]byte(`{"cause":"unknown"}`), &back))
}

func TestGroupMetrics(t *testing.T) {
	g, err := NewGroup(Config{ConsecutiveFailures: 1}, 2)
	require.NoError(t, err)
	_ = g.Do(t.Context(), "a", func(context.Context) error { return nil })
	_ = g.Do(t.Context(), "b", func(context.Context) error { return errors.New("boom") })
	_ = g.Do(t.Context(), "b", func(context.Context) error { return nil }) // rejected
	m := g.Metrics()
	assert.Equal(t, 2, m.Keys)
	assert.Equal(t, StateCounts{Closed: 1, Open: 1}, m.States)
	assert.Equal(t, uint64(2), m.Total.Calls)
	assert.Equal(t, uint64(1), m.Total.Rejections)
	assert.Equal(t, uint64(1), m.Total.Moves[Closed][Open])
	out, err := json.Marshal(m)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"states":{"closed":1,"open":1,"half-open":0,"forced-open":0,"disabled":0}`)
	_ = g.Do(t.Context(), "c", func(context.Context) error { return nil }) // evicts a
	assert.Equal(t, uint64(1), g.Metrics().Evictions)
}

func TestGroupLookupAndTripped(t *testing.T) {
	g, err := NewGroup(Config{}, 0)
	require.NoError(t, err)
	_, ok := g.Lookup("a")
	assert.False(t, ok)
	assert.Equal(t, 0, g.Len(), "Lookup creates nothing")
	g.Get("a")
	for i := range MaxTripped + 5 {
		g.Get(fmt.Sprint("open-", i)).ForceOpen()
	}
	b, ok := g.Lookup("a")
	assert.True(t, ok)
	assert.Same(t, g.Get("a"), b)
	m := g.Metrics()
	assert.Len(t, m.Tripped, MaxTripped, "bounded")
	for _, mem := range m.Tripped {
		assert.Equal(t, ForcedOpen, mem.State)
	}
}
