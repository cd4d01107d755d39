package retry

import (
	"context"
	"encoding/json"
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

// TestConfigJSONUnknownField: a key that names no field, in a Config or in
// its budget, is an error naming it by its path, however it is decoded.
func TestConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"maxAttemps":5}`, "maxAttemps"},
		{`{"dealy":"1s"}`, "dealy"},
		{`{"delay":"1s","maxDelay":"2s","attemptTimout":"1s"}`, "attemptTimout"},
		{`{"comment":"an operator's note"}`, "comment"},
		{`{"retryable":true}`, "retryable"},     // a function has no key
		{`{"sharedBudget":{}}`, "sharedBudget"}, // nor has SharedBudget
		{`{"budget":{"windw":"10s"}}`, "budget.windw"},
		{`{"maxAttempts":2,"budget":{"mode":"tokens","maxToken":5}}`, "budget.maxToken"},
		{`{"Budget":{"Ratio":0.2,"noFloo":true}}`, "budget.noFloo"},
	} {
		t.Run(tt.doc, func(t *testing.T) {
			jsontest.UnknownField[Config](t, tt.doc, `retry: config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

func TestBudgetConfigJSONUnknownField(t *testing.T) {
	for _, tt := range []struct{ doc, key string }{
		{`{"windw":"10s"}`, "windw"},
		{`{"mode":"tokens","tokenRatoi":0.5}`, "tokenRatoi"},
		{`{"enabled":true}`, "enabled"},
	} {
		t.Run(tt.doc, func(t *testing.T) {
			jsontest.UnknownField[BudgetConfig](t, tt.doc, `retry: budget config: unknown field "`+tt.key+`"`, tt.key)
		})
	}
}

// TestConfigJSONCase: keys match field names ignoring case, as encoding/json
// matches them; what matters is that no key is dropped.
func TestConfigJSONCase(t *testing.T) {
	const doc = `{"MaxAttempts":4,"DELAY":"1s","jitter":"none","Budget":{"MODE":"tokens","MaxTokens":20}}`
	want := Config{MaxAttempts: 4, Delay: time.Second, Jitter: NoJitter, Budget: BudgetConfig{Mode: "tokens", MaxTokens: 20}}
	jsontest.Decodes(t, doc, want)
}

// TestConfigFloatsFinite: no float field of Config or BudgetConfig means
// anything when infinite, so infinity is refused in Go (by New) and in JSON
// (which has no infinite number, and no "inf" string for these fields), as
// NaN is.
func TestConfigFloatsFinite(t *testing.T) {
	for _, tt := range []struct {
		field string // the Go field, under Config or Config.Budget
		mode  string // the budget's mode, for a budget field
	}{
		{"Multiplier", ""},
		{"Budget.Ratio", "ratio"},
		{"Budget.MinRetriesPerSecond", "ratio"},
		{"Budget.MaxTokens", "tokens"},
		{"Budget.TokenRatio", "tokens"},
	} {
		t.Run(tt.field, func(t *testing.T) {
			goName, inBudget := strings.CutPrefix(tt.field, "Budget.")
			key := strings.ToLower(goName[:1]) + goName[1:]
			prefix := "retry: "
			if inBudget {
				prefix = "retry: budget "
			}
			for _, v := range []float64{math.Inf(1), math.Inf(-1), math.NaN()} {
				cfg := Config{Budget: BudgetConfig{Mode: BudgetMode(tt.mode)}}
				target := reflect.ValueOf(&cfg).Elem()
				if inBudget {
					target = target.FieldByName("Budget")
				}
				target.FieldByName(goName).SetFloat(v)
				_, err := New(cfg)
				require.Error(t, err, "%s %v", tt.field, v)
				assert.Contains(t, err.Error(), prefix+goName+" "+fmt.Sprint(v))
			}
			for _, val := range []string{`"inf"`, `"+Inf"`, `1e999`, `"NaN"`} {
				doc := `{"` + key + `":` + val + `}`
				if inBudget {
					doc = `{"budget":{"mode":"` + tt.mode + `","` + key + `":` + val + `}}`
				}
				var c Config
				err := json.Unmarshal([]byte(doc), &c)
				require.Error(t, err, doc)
				assert.True(t, strings.HasPrefix(err.Error(), "retry: config: "), err.Error())
				assert.Contains(t, err.Error(), key)
			}
		})
	}
}

// FuzzConfigJSON decodes arbitrary bytes into a Config. Decoding directly
// and through json.Unmarshal must agree; a decoded Config must survive its
// JSON round trip unchanged; and New must return a Retry or an error
// prefixed "retry: ", never panic.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`,
		`{"maxAttempts":4,"maxElapsed":"30s","delay":"250ms","maxDelay":"5s","multiplier":1.5,
			"jitter":"equal","maxHint":"1m","attemptTimeout":2000000000,"budget":{"ratio":0.2}}`,
		`{"maxAttempts":1000,"delay":1,"maxDelay":"2562047h","multiplier":100,"jitter":"decorrelated"}`,
		`{"maxAttempts":-1,"multiplier":0.5,"jitter":"lots"}`,
		`{"budget":{"mode":"tokens","maxTokens":1000,"tokenRatio":1000}}`,
		`{"budget":{"disabled":true,"noFloor":true,"window":"1h"}}`,
		`{"budget":{"mode":"bogus","ratio":"inf"}}`,
		`{"budget":{"windw":"10s"}}`,
		`{"Budget":{"Mode":"tokens"},"budget":{"ratio":0.5}}`,
		`{"multiplier":"inf"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := jsontest.Decode[Config](t, "retry: config: ", b)
		if !ok {
			return
		}
		r, err := New(c)
		if err != nil {
			if r != nil || !strings.HasPrefix(err.Error(), "retry: ") {
				t.Fatalf("New(%+v) = %v, %v", c, r, err)
			}
			return
		}
		// An accepted Retry works: a call that succeeds at once returns nil.
		if err := r.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
			t.Fatalf("Do with %+v: %v", c, err)
		}
	})
}
