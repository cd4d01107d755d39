package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testConfig and its UnmarshalJSON follow the policies' pattern: an aux
// struct embedding *plain, with a duration override and a nested config.
type testConfig struct {
	Name    string        `json:"name,omitempty"`
	Rate    float64       `json:"rate,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	Hook    func()        `json:"-"`
	Inner   innerConfig   `json:"inner,omitzero"`
}

type innerConfig struct {
	Window time.Duration `json:"window,omitempty"`
}

func (c *innerConfig) UnmarshalJSON(b []byte) error {
	type plain innerConfig
	aux := struct {
		*plain
		Window *Duration `json:"window,omitempty"`
	}{(*plain)(c), (*Duration)(&c.Window)}
	return DecodeConfig("test: inner config", b, &aux)
}

type innerJSON innerConfig

func (c *innerJSON) UnmarshalJSON(b []byte) error {
	return InField("inner", (*innerConfig)(c).UnmarshalJSON(b))
}

func (c *testConfig) UnmarshalJSON(b []byte) error {
	type plain testConfig
	aux := struct {
		*plain
		Timeout *Duration  `json:"timeout,omitempty"`
		Inner   *innerJSON `json:"inner"`
	}{(*plain)(c), (*Duration)(&c.Timeout), (*innerJSON)(&c.Inner)}
	return DecodeConfig("test: config", b, &aux)
}

func TestDecodeConfig(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want testConfig
	}{
		{`{}`, testConfig{}},
		{`null`, testConfig{}},
		{` {"name":"a", "rate":0.5, "timeout":"250ms"} `, testConfig{Name: "a", Rate: 0.5, Timeout: 250 * time.Millisecond}},
		{`{"timeout":1000}`, testConfig{Timeout: time.Microsecond}},
		{`{"inner":{"window":"2s"}}`, testConfig{Inner: innerConfig{Window: 2 * time.Second}}},
		{`{"inner":null,"timeout":null}`, testConfig{}},
		// Keys match as encoding/json matches them: ignoring case.
		{`{"NAME":"b","Rate":1,"TimeOut":"1s","Inner":{"WINDOW":"1m"}}`,
			testConfig{Name: "b", Rate: 1, Timeout: time.Second, Inner: innerConfig{Window: time.Minute}}},
	} {
		t.Run(tt.in, func(t *testing.T) {
			var c testConfig
			require.NoError(t, c.UnmarshalJSON([]byte(tt.in)))
			assert.Equal(t, tt.want, c)

			c = testConfig{}
			require.NoError(t, json.Unmarshal([]byte(tt.in), &c))
			assert.Equal(t, tt.want, c)
		})
	}
}

func TestDecodeConfigUnknownField(t *testing.T) {
	for _, tt := range []struct {
		in, config, field string
	}{
		{`{"nmae":"a"}`, "test: config", "nmae"},
		{`{"name":"a","Timeot":"1s"}`, "test: config", "Timeot"},
		{`{"hook":1}`, "test: config", "hook"},    // a field tagged "-" has no key
		{`{"plain":{}}`, "test: config", "plain"}, // nor has the embedded alias
		{`{"":1}`, "test: config", ""},
		{`{"na\"me":1}`, "test: config", `na"me`},
		{`{"inner":{"windw":"1s"}}`, "test: config", "inner.windw"},
		{`{"inner":{"window":"1s","x":{"y":1}}}`, "test: config", "inner.x"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			run := func(t *testing.T, err error) {
				t.Helper()
				require.Error(t, err)
				u, ok := errors.AsType[*UnknownFieldError](err)
				require.True(t, ok, "%v is not an *UnknownFieldError", err)
				assert.Equal(t, &UnknownFieldError{Config: tt.config, Field: tt.field}, u)
				assert.Contains(t, err.Error(), tt.config+": unknown field ")
			}
			var c testConfig
			run(t, c.UnmarshalJSON([]byte(tt.in)))
			run(t, json.Unmarshal([]byte(tt.in), &c))
			for _, disallow := range []bool{false, true} {
				dec := json.NewDecoder(bytes.NewReader([]byte(tt.in)))
				if disallow {
					dec.DisallowUnknownFields()
				}
				run(t, dec.Decode(&c))
			}
		})
	}
	var c innerConfig
	err := json.Unmarshal([]byte(`{"windw":"1s"}`), &c)
	require.Error(t, err)
	assert.Equal(t, `test: inner config: unknown field "windw"`, err.Error(), "decoded on its own, the path is the key")
}

// TestUnknownFieldText pins the text of encoding/json's error for an unknown
// field, which unknownField reads for want of an error type.
func TestUnknownFieldText(t *testing.T) {
	for _, key := range []string{"x", `a"b`, "ü\n", ""} {
		in, err := json.Marshal(map[string]int{key: 1})
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.DisallowUnknownFields()
		err = dec.Decode(&struct{ Y int }{})
		require.Error(t, err)
		got, ok := unknownField(err)
		require.True(t, ok, "encoding/json's unknown-field error changed: %q", err)
		assert.Equal(t, key, got)
	}
	_, ok := unknownField(errors.New(`json: cannot unmarshal string into Go value of type int`))
	assert.False(t, ok)
}

func TestDecodeConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		in, mentions string
	}{
		{``, "unexpected end of JSON input"},
		{`{"name":`, "unexpected end of JSON input"},
		{`{} {}`, "after top-level value"},
		{`{"timeout":"soon"}`, `"soon"`},
		{`{"rate":"high"}`, "rate"},
		{`[]`, "array"},
		{`{"inner":{"window":true}}`, "true"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			c := testConfig{Name: "kept"}
			err := c.UnmarshalJSON([]byte(tt.in))
			require.Error(t, err)
			assert.Regexp(t, `^test: config: `, err.Error())
			assert.Contains(t, err.Error(), tt.mentions)
			_, ok := errors.AsType[*UnknownFieldError](err)
			assert.False(t, ok)
		})
	}
	// Malformed JSON is reported before anything is decoded.
	c := testConfig{Name: "kept"}
	require.Error(t, c.UnmarshalJSON([]byte(`{"name":"changed"} x`)))
	assert.Equal(t, "kept", c.Name)
}

func TestInField(t *testing.T) {
	assert.NoError(t, InField("k", nil))
	other := errors.New("other")
	assert.Same(t, other, InField("k", other))
	err := InField("a", InField("b", &UnknownFieldError{Config: "c", Field: "x"}))
	assert.Equal(t, &UnknownFieldError{Config: "c", Field: "a.b.x"}, err)
	assert.Equal(t, `c: unknown field "a.b.x"`, err.Error())
}

// FuzzDecodeConfig decodes arbitrary bytes through a Config-like aux
// struct. Decoding directly and through json.Unmarshal must agree, every
// error must carry the config's prefix, and a key reported unknown must
// really match no field, ignoring case as encoding/json does.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `{"name":"a","rate":0.5,"timeout":"250ms","inner":{"window":"1s"}}`,
		`{"nmae":1}`, `{"inner":{"windw":1}}`, `{"TIMEOUT":1,"Inner":{"WINDOW":2}}`, `{"hook":1}`,
		`{"plain":{}}`, `{} x`, `[`, `{"inner":[]}`, "{\"\u212aey\":1}",
	} {
		f.Add([]byte(s))
	}
	known := map[string][]string{"": {"name", "rate", "timeout", "inner"}, "inner": {"window"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c testConfig
		err := c.UnmarshalJSON(b)
		var viaJSON testConfig
		errJSON := json.Unmarshal(b, &viaJSON)
		if (err == nil) != (errJSON == nil) {
			t.Fatalf("%q: UnmarshalJSON: %v; json.Unmarshal: %v", b, err, errJSON)
		}
		if err == nil {
			if c.Hook != nil || !assert.ObjectsAreEqual(c, viaJSON) {
				t.Fatalf("%q: UnmarshalJSON gave %+v, json.Unmarshal %+v", b, c, viaJSON)
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "test: config: ") {
			t.Fatalf("%q: error %q lacks the prefix", b, err)
		}
		u, ok := errors.AsType[*UnknownFieldError](err)
		if !ok {
			return
		}
		// The key is top-level if the object has it as written (a key may
		// hold a dot); otherwise it is under "inner".
		var top map[string]json.RawMessage
		_ = json.Unmarshal(b, &top)
		parent, key := "", u.Field
		if _, isTop := top[u.Field]; !isTop {
			p, k, nested := strings.Cut(u.Field, ".")
			if !nested || !strings.EqualFold(p, "inner") {
				t.Fatalf("%q: key %q reported unknown is neither at the top nor under inner", b, u.Field)
			}
			parent, key = "inner", k
		}
		for _, name := range known[parent] {
			if strings.EqualFold(key, name) {
				t.Fatalf("%q: key %q reported unknown, but it matches %q", b, u.Field, name)
			}
		}
	})
}
