package bulkhead

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // the field at fault followed by its bad value
	}{
		{"MaxConcurrent negative", Config{MaxConcurrent: -1}, "MaxConcurrent -1"},
		{"MaxConcurrent above limit", Config{MaxConcurrent: 1<<30 + 1}, "MaxConcurrent 1073741825"},
		{"MaxConcurrent MaxInt", Config{MaxConcurrent: math.MaxInt}, "MaxConcurrent 9223372036854775807"},
		{"MaxWaiting negative", Config{MaxWaiting: -3}, "MaxWaiting -3"},
		{"MaxWaiting above limit", Config{MaxWaiting: 1<<20 + 1}, "MaxWaiting 1048577"},
		{"MaxWait negative", Config{MaxWaiting: 1, MaxWait: -time.Millisecond}, "MaxWait -1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg)
			assert.Nil(t, b)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "bulkhead: "), "error %q lacks the package prefix", err)
			assert.Contains(t, err.Error(), tc.want, "the error must name the field and its bad value")
		})
	}
}

// TestConfigLimitsAccepted checks the validator is not stricter than the
// documented limits: each configuration sits exactly on a bound.
func TestConfigLimitsAccepted(t *testing.T) {
	for name, cfg := range map[string]Config{
		"MaxConcurrent 1":          {MaxConcurrent: 1},
		"MaxConcurrent 1<<30":      {MaxConcurrent: 1 << 30},
		"MaxWaiting 1<<20":         {MaxWaiting: 1 << 20},
		"MaxWait without a queue":  {MaxWait: time.Second},
		"MaxWait the longest":      {MaxWaiting: 1, MaxWait: math.MaxInt64},
		"MaxWait one nanosecond":   {MaxWaiting: 1, MaxWait: 1},
		"every field at its bound": {MaxConcurrent: 1 << 30, MaxWaiting: 1 << 20, MaxWait: math.MaxInt64},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			assert.NoError(t, err)
		})
	}
}

// TestConfigLimitsFit: at the largest limits, the in-flight count and the
// queue stay inside their halves of the state word.
func TestConfigLimitsFit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1 << 30, MaxWaiting: 1 << 20})
		b.state.Store(1<<30 - 1) // as if 1<<30 - 1 calls were in flight
		require.True(t, b.TryAcquire())
		assert.False(t, b.TryAcquire())
		assert.Equal(t, Metrics{Limit: 1 << 30, InFlight: 1 << 30, Admitted: 1, Rejected: 1}, b.Metrics())
		var wg sync.WaitGroup
		wg.Go(func() {
			if assert.NoError(t, b.Acquire(context.Background())) {
				b.Release()
			}
		})
		synctest.Wait()
		assert.Equal(t, 1, b.Metrics().Waiting)
		b.Release() // hands the slot to the waiter, which gives it back
		wg.Wait()
		assert.Equal(t, Metrics{Limit: 1 << 30, InFlight: 1<<30 - 1, Admitted: 2, Rejected: 1}, b.Metrics())
	})
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, Config{MaxConcurrent: 25}, c, "25 in flight, no queue, no MaxWait")

	b := mustNew(t, Config{MaxWaiting: 3, MaxWait: time.Second})
	assert.Equal(t, 25, b.Limit())
	assert.Equal(t, 3, b.maxWaiting)
	assert.Equal(t, time.Second, b.maxWait)

	cfg := Config{MaxWaiting: 2}
	want := cfg
	mustNew(t, cfg)
	assert.Equal(t, want, cfg, "the caller's Config is not modified")
}

// operatorJSON is a configuration file as an operator would write it. (An
// unknown field would be an error: see json_test.go.)
const operatorJSON = `{
	"maxConcurrent": 40,
	"maxWaiting": 100,
	"maxWait": "250ms"
}`

func TestConfigJSON(t *testing.T) {
	t.Run("operator file", func(t *testing.T) {
		var got Config
		require.NoError(t, json.Unmarshal([]byte(operatorJSON), &got))
		assert.Equal(t, Config{MaxConcurrent: 40, MaxWaiting: 100, MaxWait: 250 * time.Millisecond}, got)
		_, err := New(got)
		assert.NoError(t, err)
	})

	t.Run("integer nanoseconds", func(t *testing.T) {
		var got Config
		require.NoError(t, json.Unmarshal([]byte(`{"maxWait":1500000000}`), &got))
		assert.Equal(t, 1500*time.Millisecond, got.MaxWait)
	})

	t.Run("marshal writes duration strings", func(t *testing.T) {
		out, err := json.Marshal(Config{MaxWait: 90 * time.Second})
		require.NoError(t, err)
		assert.JSONEq(t, `{"maxWait":"1m30s"}`, string(out))
		out, err = json.Marshal(&Config{MaxConcurrent: 3})
		require.NoError(t, err)
		assert.JSONEq(t, `{"maxConcurrent":3}`, string(out))
		out, err = json.Marshal(Config{})
		require.NoError(t, err)
		assert.JSONEq(t, `{}`, string(out), "zero fields are omitted: they mean the defaults")
	})

	t.Run("round trip", func(t *testing.T) {
		all := Config{MaxConcurrent: 12, MaxWaiting: 34, MaxWait: 1234567891 * time.Nanosecond}
		rv := reflect.ValueOf(all)
		for i := range rv.NumField() {
			require.False(t, rv.Field(i).IsZero(), "the fixture leaves %s unset", rv.Type().Field(i).Name)
		}
		out, err := json.Marshal(all)
		require.NoError(t, err)
		var back Config
		require.NoError(t, json.Unmarshal(out, &back))
		assert.Equal(t, all, back, "JSON: %s", out)

		type file struct {
			Bulkheads map[string]Config `json:"bulkheads"`
		}
		out, err = json.MarshalIndent(file{map[string]Config{"db": all}}, "", "  ")
		require.NoError(t, err)
		var f file
		require.NoError(t, json.Unmarshal(out, &f))
		assert.Equal(t, all, f.Bulkheads["db"])
	})

	t.Run("bad values", func(t *testing.T) {
		for _, tc := range []struct{ doc, want string }{
			{`{"maxWait":"5x"}`, `"5x"`},
			{`{"maxWait":1.5}`, `1.5`},
			{`{"maxWait":true}`, `true`},
			{`{"maxConcurrent":"many"}`, `maxConcurrent`},
			{`{"maxWaiting":2.5}`, `2.5`},
		} {
			t.Run(tc.doc, func(t *testing.T) {
				var c Config
				err := json.Unmarshal([]byte(tc.doc), &c)
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "bulkhead: config:"), "error %q lacks the prefix", err)
				assert.Contains(t, err.Error(), tc.want)
			})
		}
	})
}

// FuzzConfig feeds arbitrary configurations to New. New must not panic and
// must reject with an error prefixed "bulkhead: "; a bulkhead it accepts
// must survive a short random workload (acquires that wait, give up or time
// out, releases, limit changes) in a synctest bubble, keeping its gauges
// consistent and ending with nothing in flight.
func FuzzConfig(f *testing.F) {
	for _, s := range []struct {
		cfg Config
		ops []byte
	}{
		{Config{}, []byte{0, 0, 1, 2, 3}},
		{Config{MaxConcurrent: 1, MaxWaiting: 2}, []byte{0, 1, 1, 1, 2, 3, 4, 2, 2}},
		{Config{MaxConcurrent: 2, MaxWaiting: 3, MaxWait: time.Millisecond}, []byte{0, 0, 1, 9, 1, 4, 2, 5, 6, 2}},
		{Config{MaxConcurrent: 1 << 30, MaxWaiting: 1 << 20, MaxWait: math.MaxInt64}, []byte{0, 1, 2}},
		{Config{MaxConcurrent: -1}, nil},
		{Config{MaxWaiting: 1 << 21}, nil},
		{Config{MaxWait: -1}, nil},
	} {
		f.Add(s.cfg.MaxConcurrent, s.cfg.MaxWaiting, int64(s.cfg.MaxWait), s.ops)
	}
	f.Fuzz(func(t *testing.T, maxConc, maxWaiting int, maxWait int64, ops []byte) {
		cfg := Config{MaxConcurrent: maxConc, MaxWaiting: maxWaiting, MaxWait: time.Duration(maxWait)}
		_, err := New(cfg)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "bulkhead: ") {
				t.Fatalf("New(%+v): error %q lacks the package prefix", cfg, err)
			}
			return
		}
		if len(ops) > 32 {
			ops = ops[:32]
		}
		synctest.Test(t, func(t *testing.T) { fuzzWorkload(t, cfg, ops) })
	})
}

// fuzzWorkload runs ops against a bulkhead built from cfg, inside a bubble.
func fuzzWorkload(t *testing.T, cfg Config, ops []byte) {
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New accepted %+v outside the bubble but not inside: %v", cfg, err)
	}
	var (
		mu   sync.Mutex
		held int // slots held by the workload's goroutines and the test
		wg   sync.WaitGroup
		rels []chan struct{} // one per goroutine holding a slot, to release it
	)
	holdAsync := func(ctx context.Context) {
		release := make(chan struct{})
		mu.Lock()
		rels = append(rels, release)
		mu.Unlock()
		wg.Go(func() {
			if err := b.Acquire(ctx); err != nil {
				if err != ErrFull && err != context.Canceled && err != context.DeadlineExceeded {
					t.Errorf("Acquire: unexpected error %v", err)
				}
				return
			}
			mu.Lock()
			held++
			mu.Unlock()
			<-release
			mu.Lock()
			held--
			mu.Unlock()
			b.Release()
		})
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for _, op := range ops {
		arg := int(op >> 3)
		switch op & 7 {
		case 0: // a call that holds its slot, waiting for one if need be
			holdAsync(context.Background())
		case 1: // a call that gives up after a while
			ctx, cancel := withTimeout(time.Duration(arg) * time.Millisecond)
			cancels = append(cancels, cancel)
			holdAsync(ctx)
		case 2: // release the oldest held slot
			mu.Lock()
			if len(rels) > 0 {
				close(rels[0])
				rels = rels[1:]
			}
			mu.Unlock()
		case 3: // let time pass
			bubble.Sleep(time.Duration(arg) * time.Millisecond)
		case 4: // change the limit
			if err := b.SetLimit(1 + arg); err != nil {
				t.Fatalf("SetLimit(%d): %v", 1+arg, err)
			}
		case 5: // a quick call
			if b.TryAcquire() {
				b.Release()
			}
		case 6: // a call through Do that does not wait for long
			ctx, cancel := withTimeout(time.Millisecond)
			err := b.Do(ctx, func(context.Context) error { return nil })
			cancel()
			if err != nil && err != ErrFull && err != context.Canceled {
				t.Fatalf("Do: unexpected error %v", err)
			}
		default: // cancel the newest pending call
			if len(cancels) > 0 {
				cancels[len(cancels)-1]()
			}
		}
		synctest.Wait()
		m := b.Metrics()
		mu.Lock()
		h := held
		mu.Unlock()
		if m.InFlight != h {
			t.Fatalf("InFlight %d, but %d slots are held", m.InFlight, h)
		}
		if m.Waiting > cfg.MaxWaiting {
			t.Fatalf("Waiting %d beyond MaxWaiting %d", m.Waiting, cfg.MaxWaiting)
		}
		if m.Waiting > 0 && m.InFlight < b.Limit() {
			t.Fatalf("a call waits (%d) while a slot is free (%d in flight, limit %d)", m.Waiting, m.InFlight, b.Limit())
		}
	}
	// Release everything: every waiter gets a slot or gives up.
	for _, c := range cancels {
		c()
	}
	require.NoError(t, b.SetLimit(1<<30))
	mu.Lock()
	for _, r := range rels {
		close(r)
	}
	rels = nil
	mu.Unlock()
	wg.Wait()
	m := b.Metrics()
	if m.InFlight != 0 || m.Waiting != 0 {
		t.Fatalf("at the end: %+v", m)
	}
}

// withTimeout is context.WithTimeout for bubbles, whose context ends with
// context.Canceled: a goroutine waits on a channel timer and cancels it.
// Under -race, many time.AfterFunc timers (which context.WithTimeout uses)
// firing in a synctest bubble crash the race runtime of go1.26.8.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); <-done }
}
