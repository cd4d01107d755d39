package timeout

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
)

const operatorJSON = `{"timeout":"250ms","abandon":true}`

func TestConfigJSON(t *testing.T) {
	jsontest.Decodes(t, operatorJSON, Config{Timeout: 250 * time.Millisecond, Abandon: true})
	jsontest.Decodes(t, `{"Timeout":1000}`, Config{Timeout: time.Microsecond})
	b, err := json.Marshal(Config{Timeout: 2 * time.Second})
	require.NoError(t, err)
	assert.JSONEq(t, `{"timeout":"2s"}`, string(b))
}

// TestConfigJSONUnknownField: a key that names no field is an error naming
// it, however the Config is decoded.
func TestConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"timout":"1s"}`, "timout"},
		{`{"timeout":"1s","abandonn":true}`, "abandonn"},
	} {
		t.Run(tt.doc, func(t *testing.T) {
			jsontest.UnknownField[Config](t, tt.doc, `timeout: config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

// FuzzConfig feeds arbitrary configurations to New. New must not panic and
// must reject with an error prefixed "timeout: " exactly the configurations
// whose Timeout is not positive; a Timeout it accepts must, in a bubble,
// time out an operation that outlives it and pass through one that does
// not, in both modes.
func FuzzConfig(f *testing.F) {
	for _, s := range []struct {
		d       int64
		abandon bool
	}{{0, false}, {-1, true}, {1, false}, {int64(time.Second), true}, {1<<63 - 1, false}} {
		f.Add(s.d, s.abandon)
	}
	f.Fuzz(func(t *testing.T, d int64, abandon bool) {
		cfg := Config{Timeout: time.Duration(d), Abandon: abandon}
		to, err := New(cfg)
		if err != nil {
			if to != nil || !strings.HasPrefix(err.Error(), "timeout: ") || d > 0 {
				t.Fatalf("New(%+v) = %v, %v", cfg, to, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("New accepted %+v", cfg)
		}
		synctest.Test(t, func(t *testing.T) {
			if err := to.Do(t.Context(), func(context.Context) error { return nil }); err != nil {
				t.Fatalf("success: %v", err)
			}
			if d > int64(1000*time.Hour) {
				return // expiry too far off to wait for, even in a bubble
			}
			err := to.Do(t.Context(), func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
			if _, ok := err.(*Error); !ok {
				t.Fatalf("expiry: %v", err)
			}
		})
	})
}

// FuzzConfigJSON decodes arbitrary bytes into a Config. Decoding directly
// and through json.Unmarshal must agree; a decoded Config must survive its
// JSON round trip unchanged; and New must return a timeout or an error
// prefixed "timeout: ", never panic.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		operatorJSON, `{}`, `null`, `{"timeout":1}`, `{"timeout":"-1ns"}`,
		`{"timeout":9223372036854775807}`, `{"timout":"1s"}`, `{"Timeout":"1s","timeout":"2s"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := jsontest.Decode[Config](t, "timeout: config: ", b)
		if !ok {
			return
		}
		to, err := New(c)
		if err != nil {
			if to != nil || !strings.HasPrefix(err.Error(), "timeout: ") {
				t.Fatalf("New(%+v) = %v, %v", c, to, err)
			}
			return
		}
		assert.Equal(t, c.Timeout, to.Timeout())
	})
}
