package retry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	r := mustNew(t, Config{})
	c := r.cfg
	assert.Equal(t, 3, c.MaxAttempts)
	assert.Equal(t, 100*time.Millisecond, c.Delay)
	assert.Equal(t, 10*time.Second, c.MaxDelay)
	assert.Equal(t, 2.0, c.Multiplier)
	assert.Equal(t, FullJitter, c.Jitter)
	assert.Equal(t, 5*time.Minute, c.MaxHint)
	assert.NotNil(t, c.Retryable)
	assert.NotNil(t, r.Budget(), "a budget is on by default: the safe thing")

	r = mustNew(t, Config{Delay: time.Minute})
	assert.Equal(t, time.Minute, r.cfg.MaxDelay, "MaxDelay defaults to at least Delay")
	r = mustNew(t, Config{Budget: BudgetConfig{Disabled: true}})
	assert.Nil(t, r.Budget())
}

func TestConfigJSON(t *testing.T) {
	const doc = `{"maxAttempts":4,"maxElapsed":"30s","delay":"250ms","maxDelay":"5s","multiplier":1.5,
		"jitter":"equal","maxHint":"1m","attemptTimeout":2000000000,"budget":{"ratio":0.2}}`
	var c Config
	require.NoError(t, json.Unmarshal([]byte(doc), &c))
	assert.Equal(t, 4, c.MaxAttempts)
	assert.Equal(t, 30*time.Second, c.MaxElapsed)
	assert.Equal(t, 250*time.Millisecond, c.Delay)
	assert.Equal(t, 5*time.Second, c.MaxDelay)
	assert.Equal(t, 1.5, c.Multiplier)
	assert.Equal(t, EqualJitter, c.Jitter)
	assert.Equal(t, time.Minute, c.MaxHint)
	assert.Equal(t, 2*time.Second, c.AttemptTimeout)
	assert.Equal(t, 0.2, c.Budget.Ratio)
	_, err := New(c)
	require.NoError(t, err)

	out, err := json.Marshal(c)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"delay":"250ms"`)
	var back Config
	require.NoError(t, json.Unmarshal(out, &back))
	assert.Equal(t, c, back)

	err = json.Unmarshal([]byte(`{"delay":"soon"}`), &c)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "retry: config:"), err.Error())
	assert.Contains(t, err.Error(), "soon")
}

// FuzzConfig: New never panics on any configuration, rejects with an error
// prefixed "retry: ", and an accepted configuration survives calls that
// fail, hint, time out and get cancelled, in a synctest bubble, without
// panicking or overrunning the caller's deadline.
func FuzzConfig(f *testing.F) {
	f.Add(0, int64(0), int64(0), int64(0), 0.0, "", int64(0), int64(0), uint8(0))
	f.Add(5, int64(time.Second), int64(10*time.Millisecond), int64(time.Second), 2.0, "decorrelated", int64(time.Minute), int64(50*time.Millisecond), uint8(7))
	f.Add(1000, int64(1), int64(1), int64(1), 100.0, "none", int64(1), int64(1), uint8(255))
	f.Add(-1, int64(-1), int64(-5), int64(3), 0.5, "lots", int64(-1), int64(-1), uint8(3))
	f.Add(3, int64(0), int64(1<<62), int64(1<<62), 100.0, "full", int64(1<<62), int64(0), uint8(9))
	f.Fuzz(func(t *testing.T, attempts int, maxElapsed, delay, maxDelay int64, mult float64, jitter string,
		maxHint, attemptTimeout int64, ops uint8) {
		cfg := Config{
			MaxAttempts: attempts, MaxElapsed: time.Duration(maxElapsed), Delay: time.Duration(delay),
			MaxDelay: time.Duration(maxDelay), Multiplier: mult, Jitter: Jitter(jitter),
			MaxHint: time.Duration(maxHint), AttemptTimeout: time.Duration(attemptTimeout),
		}
		if _, err := New(cfg); err != nil {
			if !strings.HasPrefix(err.Error(), "retry: ") {
				t.Fatalf("New(%+v): error %q lacks the package prefix", cfg, err)
			}
			return
		}
		synctest.Test(t, func(t *testing.T) {
			r, err := New(cfg) // inside the bubble: its clock starts there
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()
			deadline, _ := ctx.Deadline()
			for i := range 4 {
				n := 0
				err := r.Do(ctx, func(ctx context.Context) error {
					n++
					switch (int(ops) >> (2 * i)) & 3 {
					case 0:
						return errBoom
					case 1:
						return seawall.WithRetryAfter(errBoom, time.Duration(n)*time.Second)
					case 2:
						<-ctx.Done() // hangs until its attempt times out, or the caller's deadline
						return ctx.Err()
					}
					if n < 3 {
						return errBoom
					}
					return nil
				})
				if time.Now().After(deadline) {
					t.Fatalf("Do returned at %v, past the deadline %v", time.Now(), deadline)
				}
				if err != nil {
					var re *Error
					if !errors.As(err, &re) || re.Attempts < 1 || re.Attempts > r.cfg.MaxAttempts {
						t.Fatalf("bad final error %v", err)
					}
				}
			}
		})
	})
}
