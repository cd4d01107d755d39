package hedge

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/jsonx/jsontest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	h := mustNew(t, Config{})
	assert.Equal(t, 2, h.cfg.MaxAttempts)
	assert.Equal(t, 0.95, h.cfg.Percentile)
	assert.NotNil(t, h.cfg.NonFatal)
	_, ok := h.Delay()
	assert.False(t, ok, "no hedge until latencies are known")

	h = mustNew(t, Config{Delay: time.Millisecond})
	assert.Zero(t, h.cfg.Percentile, "a Delay alone is fixed")
	d, ok := h.Delay()
	assert.True(t, ok)
	assert.Equal(t, time.Millisecond, d)
}

func TestConfigErrorsNameFieldAndValue(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxAttempts: -1}, "hedge: MaxAttempts -1 out of range [1,10]"},
		{Config{MaxAttempts: 11}, "hedge: MaxAttempts 11 out of range [1,10]"},
		{Config{Delay: -time.Second}, "hedge: Delay -1s is negative"},
		{Config{Percentile: 1}, "hedge: Percentile 1 out of range (0,1)"},
		{Config{Percentile: -0.5}, "hedge: Percentile -0.5 out of range (0,1)"},
		{Config{Percentile: math.NaN()}, "hedge: Percentile NaN out of range (0,1)"},
	} {
		h, err := New(tt.cfg)
		assert.Nil(t, h)
		assert.EqualError(t, err, tt.want)
	}
}

func TestDefaultNonFatal(t *testing.T) {
	assert.True(t, DefaultNonFatal(errBoom))
	assert.True(t, DefaultNonFatal(StopHedging(errBoom)))
	assert.False(t, DefaultNonFatal(context.Canceled))
	assert.False(t, DefaultNonFatal(context.DeadlineExceeded))
}

const operatorJSON = `{"maxAttempts":3,"delay":"25ms","percentile":0.99}`

func TestConfigJSON(t *testing.T) {
	var c Config
	require.NoError(t, json.Unmarshal([]byte(operatorJSON), &c))
	assert.Equal(t, Config{MaxAttempts: 3, Delay: 25 * time.Millisecond, Percentile: 0.99}, c)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.JSONEq(t, operatorJSON, string(b))
	jsontest.Decodes(t, `{"MAXATTEMPTS":3,"Delay":25000000,"percentile":0.99}`, c)
	jsontest.UnknownField[Config](t, `{"maxAttempt":3}`, `hedge: config: unknown field "maxAttempt"`, "maxAttempt")
	jsontest.UnknownField[Config](t, `{"delay":"1s","dealy":"1s"}`, `hedge: config: unknown field "dealy"`, "dealy")
}

// FuzzConfig: New returns a Hedge or an error prefixed "hedge: ", never
// panics, and a Hedge it returns runs calls to completion.
func FuzzConfig(f *testing.F) {
	for _, c := range []Config{
		{}, {MaxAttempts: 1}, {MaxAttempts: 10, Delay: time.Millisecond},
		{Delay: math.MaxInt64, Percentile: 0.5}, {MaxAttempts: -1}, {MaxAttempts: 11},
		{Delay: -1}, {Percentile: 1}, {Percentile: math.Inf(1)},
	} {
		f.Add(c.MaxAttempts, int64(c.Delay), c.Percentile, uint8(3))
	}
	f.Fuzz(func(t *testing.T, maxAttempts int, delay int64, p float64, fails uint8) {
		cfg := Config{MaxAttempts: maxAttempts, Delay: time.Duration(delay), Percentile: p}
		h, err := New(cfg)
		if err != nil {
			if h != nil || !strings.HasPrefix(err.Error(), "hedge: ") {
				t.Fatalf("New(%+v) = %v, %v", cfg, h, err)
			}
			return
		}
		synctest.Test(t, func(t *testing.T) {
			// The first fails attempts fail (non-fatally), quickly.
			n := 0
			_, err := Get(t.Context(), h, func(ctx context.Context) (int, error) {
				n++ // attempts never overlap here: each fails at once
				if n <= int(fails%12) {
					return 0, errBoom
				}
				return n, nil
			}, nil)
			if err != nil && err != errBoom {
				t.Fatalf("Get: %v", err)
			}
			if n > h.cfg.MaxAttempts {
				t.Fatalf("%d attempts, MaxAttempts %d", n, h.cfg.MaxAttempts)
			}
		})
	})
}

// FuzzConfigJSON decodes arbitrary bytes into a Config: decoding directly
// and through json.Unmarshal must agree, a decoded Config must survive its
// round trip, and New must return a Hedge or an error prefixed "hedge: ".
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		operatorJSON, `{}`, `null`, `{"maxAttempts":10,"delay":9223372036854775807}`,
		`{"maxAttempts":-1}`, `{"delay":"-1ns"}`, `{"percentile":1.5}`, `{"dealy":"1s"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := jsontest.Decode[Config](t, "hedge: config: ", b)
		if !ok {
			return
		}
		h, err := New(c)
		if err != nil && (h != nil || !strings.HasPrefix(err.Error(), "hedge: ")) {
			t.Fatalf("New(%+v) = %v, %v", c, h, err)
		}
	})
}

// SpendOnly hides the budget's Request, so a Hedge counts no requests in
// a budget that a retry wrapping it counts already.
func TestSpendOnly(t *testing.T) {
	b := &countingBudget{}
	_, hasRequest := SpendOnly(b).(interface{ Request() })
	if hasRequest {
		t.Fatal("SpendOnly kept Request")
	}
	h, err := New(Config{Delay: time.Hour, Budget: SpendOnly(b)})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Do(t.Context(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if b.requests != 0 {
		t.Fatalf("%d requests counted, want 0", b.requests)
	}
	if !SpendOnly(b).AllowRetry() {
		t.Fatal("AllowRetry not passed through")
	}
}

type countingBudget struct{ requests int }

func (b *countingBudget) Request()         { b.requests++ }
func (b *countingBudget) AllowRetry() bool { return true }
