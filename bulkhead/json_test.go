package bulkhead

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConfigJSONUnknownField: a key that names no field is an error naming
// it, however the Config is decoded.
func TestConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"maxConcurent":10}`, "maxConcurent"},
		{`{"maxWaiting":5,"maxWiat":"1s"}`, "maxWiat"}, // next to a duration, decoded through its override
		{`{"comment":"an operator's note"}`, "comment"},
		{`{"max_waiting":5}`, "max_waiting"},
	} {
		t.Run(tt.doc, func(t *testing.T) {
			want := `bulkhead: config: unknown field "` + tt.key + `"`
			run := func(t *testing.T, err error) {
				t.Helper()
				require.Error(t, err)
				assert.Equal(t, want, err.Error())
				u, ok := errors.AsType[*jsonx.UnknownFieldError](err)
				require.True(t, ok, "%T is not an *UnknownFieldError", err)
				assert.Equal(t, tt.key, u.Field)
			}
			var c Config
			run(t, json.Unmarshal([]byte(tt.doc), &c))
			run(t, c.UnmarshalJSON([]byte(tt.doc)))
			for _, disallow := range []bool{false, true} {
				dec := json.NewDecoder(strings.NewReader(tt.doc))
				if disallow {
					dec.DisallowUnknownFields()
				}
				run(t, dec.Decode(&c))
			}
			var file struct {
				Bulkheads map[string]Config `json:"bulkheads"`
			}
			run(t, json.Unmarshal([]byte(`{"bulkheads":{"db":`+tt.doc+`}}`), &file))
		})
	}
}

// TestConfigJSONCase: keys match field names ignoring case, as encoding/json
// matches them; what matters is that no key is dropped.
func TestConfigJSONCase(t *testing.T) {
	const doc = `{"MaxConcurrent":4,"MAXWAITING":2,"maxwait":"1s"}`
	want := Config{MaxConcurrent: 4, MaxWaiting: 2, MaxWait: time.Second}
	var c Config
	require.NoError(t, json.Unmarshal([]byte(doc), &c))
	assert.Equal(t, want, c)
	c = Config{}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&c))
	assert.Equal(t, want, c)
}

// FuzzConfigJSON decodes arbitrary bytes into a Config. Decoding directly
// and through json.Unmarshal must agree; a decoded Config must survive its
// JSON round trip unchanged; and New must return a bulkhead or an error
// prefixed "bulkhead: ", never panic.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		operatorJSON, `{}`, `null`, `{"maxConcurrent":1,"maxWaiting":2,"maxWait":"1ms"}`,
		`{"maxConcurrent":1073741824,"maxWaiting":1048576,"maxWait":9223372036854775807}`,
		`{"maxConcurrent":-1}`, `{"maxWaiting":1048577}`, `{"maxWait":"-1ns"}`, `{"maxWiat":"1s"}`,
		`{"MaxConcurrent":3,"maxconcurrent":4}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		err := c.UnmarshalJSON(b)
		var viaJSON Config
		errJSON := json.Unmarshal(b, &viaJSON)
		if (err == nil) != (errJSON == nil) {
			t.Fatalf("%q: UnmarshalJSON: %v; json.Unmarshal: %v", b, err, errJSON)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "bulkhead: config: ") {
				t.Fatalf("%q: error %q lacks the prefix", b, err)
			}
			return
		}
		if c != viaJSON {
			t.Fatalf("%q: UnmarshalJSON gave %+v, json.Unmarshal %+v", b, c, viaJSON)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("%q decoded to %+v, which does not marshal: %v", b, c, err)
		}
		var back Config
		if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("%q decoded to %+v, marshalled to %s, decoded to %+v, %v", b, c, out, back, err)
		}
		bh, err := New(c)
		if err != nil {
			if bh != nil || !strings.HasPrefix(err.Error(), "bulkhead: ") {
				t.Fatalf("New(%+v) = %v, %v", c, bh, err)
			}
			return
		}
		if bh.TryAcquire() {
			bh.Release()
		}
	})
}
