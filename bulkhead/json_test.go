package bulkhead

import (
	"strings"
	"testing"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
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
			jsontest.UnknownField[Config](t, tt.doc, `bulkhead: config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

// TestConfigJSONCase: keys match field names ignoring case, as encoding/json
// matches them; what matters is that no key is dropped.
func TestConfigJSONCase(t *testing.T) {
	const doc = `{"MaxConcurrent":4,"MAXWAITING":2,"maxwait":"1s"}`
	want := Config{MaxConcurrent: 4, MaxWaiting: 2, MaxWait: time.Second}
	jsontest.Decodes(t, doc, want)
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
		c, ok := jsontest.Decode[Config](t, "bulkhead: config: ", b)
		if !ok {
			return
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
