package ratelimit

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
)

// TestConfigJSONUnknownField: a key that names no field is an error naming
// it, however the Config or KeyedConfig is decoded.
func TestConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"rate":10,"brust":5}`, "brust"},
		{`{"rat":"inf"}`, "rat"},
		{`{"rate":10,"maxKeys":100}`, "maxKeys"}, // a KeyedConfig field is not a Config's
		{`{"rate":1,"comment":"an operator's note"}`, "comment"},
		{`{"limit":100}`, "limit"}, // x/time/rate's name for it
	} {
		t.Run(tt.doc, func(t *testing.T) {
			jsontest.UnknownField[Config](t, tt.doc, `ratelimit: config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
	for _, tt := range []struct{ doc, key string }{
		{`{"rate":10,"maxKey":100}`, "maxKey"},
		{`{"rate":10,"brust":5,"maxKeys":3}`, "brust"},
		{`{"rate":10,"config":{"rate":1}}`, "config"}, // the embedded Config is flat in JSON
	} {
		t.Run("keyed "+tt.doc, func(t *testing.T) {
			jsontest.UnknownField[KeyedConfig](t, tt.doc, `ratelimit: keyed config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

// TestConfigJSONCase: keys match field names ignoring case, as encoding/json
// matches them; what matters is that no key is dropped.
func TestConfigJSONCase(t *testing.T) {
	var c Config
	require.NoError(t, json.Unmarshal([]byte(`{"Rate":5,"BURST":2}`), &c))
	assert.Equal(t, Config{Rate: 5, Burst: 2}, c)
	var kc KeyedConfig
	dec := json.NewDecoder(strings.NewReader(`{"RATE":"INF","Burst":3,"MaxKeys":7}`))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&kc))
	assert.Equal(t, KeyedConfig{Config: Config{Rate: math.Inf(1), Burst: 3}, MaxKeys: 7}, kc)
}

// TestRateInf: no limit is +Inf, written math.Inf(1) in Go and "inf" in
// JSON, accepted alike by New, NewKeyed and SetRate; nothing else means no
// limit, in Go or in JSON.
func TestRateInf(t *testing.T) {
	t.Run("Go", func(t *testing.T) {
		l, err := New(Config{Rate: math.Inf(1)})
		require.NoError(t, err)
		assert.True(t, math.IsInf(l.Rate(), 1))
		assert.Equal(t, 1, l.Burst(), "the default burst of no limit")
		for range 1000 {
			require.True(t, l.Allow())
		}
		k, err := NewKeyed(KeyedConfig{Config: Config{Rate: math.Inf(1)}})
		require.NoError(t, err)
		assert.True(t, math.IsInf(k.Rate(), 1))
		for range 1000 {
			require.True(t, k.Allow("a"))
		}

		l, err = New(Config{Rate: 1})
		require.NoError(t, err)
		require.NoError(t, l.SetRate(math.Inf(1)))
		assert.True(t, math.IsInf(l.Rate(), 1))
		require.NoError(t, l.SetRate(2))
		assert.Equal(t, 2.0, l.Rate())
	})

	t.Run("Go refuses", func(t *testing.T) {
		for _, r := range []float64{math.Inf(-1), math.NaN(), 0, math.Copysign(0, -1), -1, math.MaxFloat64, 1e9 * (1 + 1e-15)} {
			want := "ratelimit: Rate " + fmt.Sprint(r) + " out of range"
			_, err := New(Config{Rate: r})
			require.Error(t, err, "%v", r)
			assert.Contains(t, err.Error(), want)
			_, err = NewKeyed(KeyedConfig{Config: Config{Rate: r}})
			require.Error(t, err, "%v", r)
			assert.Contains(t, err.Error(), want)
			l, err := New(Config{Rate: 3})
			require.NoError(t, err)
			err = l.SetRate(r)
			require.Error(t, err, "%v", r)
			assert.Contains(t, err.Error(), want)
			assert.Equal(t, 3.0, l.Rate(), "a refused SetRate changes nothing")
		}
	})

	t.Run("JSON", func(t *testing.T) {
		for _, s := range []string{`"inf"`, `"Inf"`, `"INF"`, `"+inf"`, `"+Inf"`, ` "inf" `, `"\u0069nf"`} {
			var c Config
			require.NoError(t, json.Unmarshal([]byte(`{"rate":`+s+`}`), &c), s)
			assert.True(t, math.IsInf(c.Rate, 1), s)
			var kc KeyedConfig
			require.NoError(t, json.Unmarshal([]byte(`{"rate":`+s+`,"maxKeys":2}`), &kc), s)
			assert.True(t, math.IsInf(kc.Rate, 1), s)
		}
	})

	t.Run("JSON refuses", func(t *testing.T) {
		for _, s := range []string{`"-inf"`, `"infinity"`, `"Infinity"`, `"NaN"`, `"100"`, `""`, `" inf"`, `1e999`, `-1e999`, `"unlimited"`} {
			for _, kind := range []string{"config", "keyed config"} {
				var err error
				if kind == "config" {
					err = json.Unmarshal([]byte(`{"rate":`+s+`}`), new(Config))
				} else {
					err = json.Unmarshal([]byte(`{"rate":`+s+`}`), new(KeyedConfig))
				}
				require.Error(t, err, s)
				assert.True(t, strings.HasPrefix(err.Error(), "ratelimit: "+kind+": invalid rate "+strings.TrimSpace(s)), err.Error())
			}
		}
	})

	t.Run("round trip", func(t *testing.T) {
		for _, c := range []Config{{Rate: math.Inf(1)}, {Rate: math.Inf(1), Burst: 7}} {
			out, err := json.Marshal(c)
			require.NoError(t, err)
			assert.Contains(t, string(out), `"rate":"inf"`)
			var back Config
			require.NoError(t, json.Unmarshal(out, &back))
			assert.Equal(t, c, back, "%s", out)

			kc := KeyedConfig{Config: c, MaxKeys: 9}
			out, err = json.Marshal(kc)
			require.NoError(t, err)
			assert.Contains(t, string(out), `"rate":"inf"`)
			var kback KeyedConfig
			require.NoError(t, json.Unmarshal(out, &kback))
			assert.Equal(t, kc, kback, "%s", out)
		}
	})
}

// FuzzConfigJSON decodes arbitrary bytes into a KeyedConfig and a Config.
// Decoding directly and through json.Unmarshal must agree; a decoded config
// must survive its JSON round trip unchanged; and New and NewKeyed must
// return a limiter or an error prefixed "ratelimit: ", never panic.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `{"rate":100,"burst":20}`, `{"rate":"inf"}`, `{"rate":"+Inf","burst":5,"maxKeys":3}`,
		`{"rate":1e9,"burst":1000000000}`, `{"rate":3.17e-8,"burst":1}`, `{"rate":5e-324}`, `{"rate":-0}`,
		`{"rate":"-inf"}`, `{"rate":"nan"}`, `{"rate":1,"maxKeys":16777216}`, `{"rate":1,"maxKeys":16777217}`,
		`{"rate":2.5,"brust":4}`, `{"Rate":1,"rate":"inf"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if kc, ok := jsontest.Decode[KeyedConfig](t, "ratelimit: keyed config: ", b); ok {
			k, err := NewKeyed(kc)
			if err != nil {
				if k != nil || !strings.HasPrefix(err.Error(), "ratelimit: ") {
					t.Fatalf("NewKeyed(%+v) = %v, %v", kc, k, err)
				}
			} else {
				k.Allow("a")
			}
		}

		c, ok := jsontest.Decode[Config](t, "ratelimit: config: ", b)
		if !ok {
			return
		}
		l, err := New(c)
		if err != nil {
			if l != nil || !strings.HasPrefix(err.Error(), "ratelimit: ") {
				t.Fatalf("New(%+v) = %v, %v", c, l, err)
			}
			return
		}
		l.Allow()
	})
}
