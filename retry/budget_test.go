package retry

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/internal/shard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// window10s is the default budget with a 10s window, in which the tests
// below do their arithmetic (the default Window is 5s).
var window10s = BudgetConfig{Window: 10 * time.Second}

func mustBudget(t testing.TB, cfg BudgetConfig) *Budget {
	t.Helper()
	b, err := NewBudget(cfg)
	require.NoError(t, err)
	require.NotNil(t, b)
	return b
}

// stormResult is what a storm did, with the times (since its start) of its
// requests and retries.
type stormResult struct {
	requests, attempts, retries int
	refused                     int // requests that stopped because AllowRetry refused
	requestAt, retryAt          []time.Duration
}

// storm makes n requests, one every gap, against an operation that always
// fails, each making up to maxAttempts attempts while the budget allows,
// the way a Retry uses its budget: Request, then for each attempt Failure
// and, before a retry, AllowRetry. It runs in a bubble; its retries do not
// wait (backoff does not change what the budget allows).
func storm(b *Budget, n int, gap time.Duration, maxAttempts int) stormResult {
	var r stormResult
	start := time.Now()
	for i := range n {
		if i > 0 {
			bubble.Sleep(gap)
		}
		b.Request()
		r.requests++
		r.requestAt = append(r.requestAt, time.Since(start))
		for attempt := 1; ; attempt++ {
			r.attempts++
			b.Failure() // the attempt failed
			if attempt >= maxAttempts {
				break
			}
			if !b.AllowRetry() {
				r.refused++
				break
			}
			r.retries++
			r.retryAt = append(r.retryAt, time.Since(start))
		}
	}
	return r
}

// drain asks for retries, with no new request, until the budget refuses
// one, and returns how many it allowed (at most limit).
func drain(b *Budget, limit int) int {
	n := 0
	for n < limit && b.AllowRetry() {
		n++
	}
	return n
}

// TestBudgetConcurrent shares a budget among goroutines; its counts must
// add up, and -race must find nothing.
func TestBudgetConcurrent(t *testing.T) {
	for name, cfg := range map[string]BudgetConfig{
		"ratio":             {},
		"ratio/shortWindow": {Window: 100 * time.Millisecond},
		"tokens":            {Mode: "tokens"},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { hammerBudget(t, cfg) })
		})
	}
}

func hammerBudget(t *testing.T, cfg BudgetConfig) {
	const workers, requestsPerWorker = 8, 3000
	b := mustBudget(t, cfg)
	var requests, allowed, refused atomic.Uint64
	stop := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() { // an exporter reading the metrics meanwhile
		var last BudgetMetrics
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			m := b.Metrics()
			assert.GreaterOrEqual(t, m.Requests, last.Requests)
			assert.GreaterOrEqual(t, m.Retries, last.Retries)
			assert.GreaterOrEqual(t, m.Exhausted, last.Exhausted)
			last = m
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range requestsPerWorker {
				b.Request()
				requests.Add(1)
				failOneIn := 50 // healthy, then an outage, in turns
				if i/500%2 == 1 {
					failOneIn = 2
				}
				for attempt := 1; ; attempt++ {
					if rng.IntN(failOneIn) != 0 {
						b.Success()
						break
					}
					b.Failure()
					if attempt == 3 {
						break
					}
					if !b.AllowRetry() {
						refused.Add(1)
						break
					}
					allowed.Add(1)
				}
				if i%100 == 0 {
					bubble.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	reader.Wait()

	m := b.Metrics()
	assert.Equal(t, requests.Load(), m.Requests)
	assert.Equal(t, uint64(workers*requestsPerWorker), m.Requests)
	assert.Equal(t, allowed.Load(), m.Retries)
	assert.Equal(t, refused.Load(), m.Exhausted)
	if b.tokens {
		assert.GreaterOrEqual(t, m.Tokens, 0.0)
		assert.LessOrEqual(t, m.Tokens, b.cfg.MaxTokens)
	} else {
		assert.Zero(t, m.Tokens)
		checkSamples(t, b)
	}
	assert.Positive(t, m.Retries)
	assert.Positive(t, m.Exhausted)
	t.Logf("%+v", m)
}

func TestBudgetConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  BudgetConfig
		want string
	}{
		{BudgetConfig{Mode: "Ratio"}, `retry: budget Mode "Ratio" unknown; want "ratio" or "tokens"`},
		{BudgetConfig{Mode: "token"}, `retry: budget Mode "token" unknown; want "ratio" or "tokens"`},
		{BudgetConfig{Ratio: 11}, `retry: budget Ratio 11 out of range (0,10]`},
		{BudgetConfig{Ratio: -0.1}, `retry: budget Ratio -0.1 out of range (0,10]`},
		{BudgetConfig{Ratio: math.NaN()}, `retry: budget Ratio NaN out of range (0,10]`},
		{BudgetConfig{Mode: "ratio", Ratio: math.Inf(1)}, `retry: budget Ratio +Inf out of range (0,10]`},
		{BudgetConfig{MinRetriesPerSecond: -1}, `retry: budget MinRetriesPerSecond -1 out of range [0,1e+06]`},
		{BudgetConfig{MinRetriesPerSecond: 2e6}, `retry: budget MinRetriesPerSecond 2e+06 out of range [0,1e+06]`},
		{BudgetConfig{MinRetriesPerSecond: math.NaN()}, `retry: budget MinRetriesPerSecond NaN out of range [0,1e+06]`},
		{BudgetConfig{NoFloor: true, MinRetriesPerSecond: 2}, `retry: budget NoFloor set with MinRetriesPerSecond 2; choose one`},
		{BudgetConfig{Window: 99 * time.Millisecond}, `retry: budget Window 99ms out of range [100ms,1h0m0s]`},
		{BudgetConfig{Window: -time.Second}, `retry: budget Window -1s out of range [100ms,1h0m0s]`},
		{BudgetConfig{Window: time.Hour + 1}, `retry: budget Window 1h0m0.000000001s out of range [100ms,1h0m0s]`},
		{BudgetConfig{MaxTokens: 10}, `retry: budget MaxTokens 10 set in mode "ratio"`},
		{BudgetConfig{Mode: "ratio", TokenRatio: 0.1}, `retry: budget TokenRatio 0.1 set in mode "ratio"`},
		{BudgetConfig{Mode: "tokens", Ratio: 0.1}, `retry: budget Ratio 0.1 set in mode "tokens"`},
		{BudgetConfig{Mode: "tokens", MinRetriesPerSecond: 1}, `retry: budget MinRetriesPerSecond 1 set in mode "tokens"`},
		{BudgetConfig{Mode: "tokens", NoFloor: true}, `retry: budget NoFloor true set in mode "tokens"`},
		{BudgetConfig{Mode: "tokens", Window: time.Second}, `retry: budget Window 1s set in mode "tokens"`},
		{BudgetConfig{Mode: "tokens", MaxTokens: 1001}, `retry: budget MaxTokens 1001 out of range (0,1000]`},
		{BudgetConfig{Mode: "tokens", MaxTokens: -1}, `retry: budget MaxTokens -1 out of range (0,1000]`},
		{BudgetConfig{Mode: "tokens", MaxTokens: math.NaN()}, `retry: budget MaxTokens NaN out of range (0,1000]`},
		{BudgetConfig{Mode: "tokens", TokenRatio: 11}, `retry: budget TokenRatio 11 out of range (0,10] (MaxTokens)`},
		{BudgetConfig{Mode: "tokens", MaxTokens: 2, TokenRatio: 2.5}, `retry: budget TokenRatio 2.5 out of range (0,2] (MaxTokens)`},
		{BudgetConfig{Mode: "tokens", TokenRatio: -0.5}, `retry: budget TokenRatio -0.5 out of range (0,10] (MaxTokens)`},
		{BudgetConfig{Mode: "tokens", TokenRatio: math.NaN()}, `retry: budget TokenRatio NaN out of range (0,10] (MaxTokens)`},
		{BudgetConfig{Disabled: true, Ratio: 11}, `retry: budget Ratio 11 out of range (0,10]`},
	} {
		t.Run(tt.want, func(t *testing.T) {
			b, err := NewBudget(tt.cfg)
			assert.Nil(t, b)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

// TestBudgetMode: the modes are written in JSON as the strings operators
// already use, the zero Mode is RatioMode, and an unknown one is reported
// with the field and the value.
func TestBudgetMode(t *testing.T) {
	for mode, want := range map[BudgetMode]string{RatioMode: `{"mode":"ratio"}`, TokensMode: `{"mode":"tokens"}`} {
		out, err := json.Marshal(BudgetConfig{Mode: mode})
		require.NoError(t, err)
		assert.JSONEq(t, want, string(out))
		var back BudgetConfig
		require.NoError(t, json.Unmarshal([]byte(want), &back))
		assert.Equal(t, mode, back.Mode)
		b := mustBudget(t, back)
		assert.Equal(t, mode, b.cfg.Mode)
		assert.Equal(t, mode == TokensMode, b.tokens)
	}
	assert.Equal(t, RatioMode, mustBudget(t, BudgetConfig{}).cfg.Mode)

	cfg := BudgetConfig{Mode: "leaky"}
	_, err := NewBudget(cfg)
	require.EqualError(t, err, `retry: budget Mode "leaky" unknown; want "ratio" or "tokens"`)
	_, err = New(Config{Budget: cfg})
	require.EqualError(t, err, `retry: budget Mode "leaky" unknown; want "ratio" or "tokens"`)
}

func TestBudgetConfigValidEdges(t *testing.T) {
	for _, cfg := range []BudgetConfig{
		{Ratio: 10},
		{Ratio: 1e-9},
		{Mode: "ratio", NoFloor: true},
		{MinRetriesPerSecond: 1e6, Window: time.Hour},
		{MinRetriesPerSecond: 1e-3},
		{Window: 100 * time.Millisecond},
		{Window: 100*time.Millisecond + 7}, // not a multiple of 10ns
		{Mode: "tokens", MaxTokens: 1000, TokenRatio: 1000},
		{Mode: "tokens", MaxTokens: 0.001},
		{Mode: "tokens", TokenRatio: 10},
		{Disabled: true, Mode: "tokens", MaxTokens: 5},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := NewBudget(cfg)
				require.NoError(t, err)
				exerciseBudget(t, b, []byte{0, 3, 2, 3, 1, 4, 3, 12, 3, 0, 0, 28, 3})
			})
		})
	}
}

func TestBudgetConfigDefaults(t *testing.T) {
	for _, tt := range []struct {
		in, want BudgetConfig
	}{
		{BudgetConfig{}, BudgetConfig{Mode: "ratio", Ratio: 0.1, MinRetriesPerSecond: 0.2, Window: 5 * time.Second}},
		{window10s, BudgetConfig{Mode: "ratio", Ratio: 0.1, MinRetriesPerSecond: 0.1, Window: 10 * time.Second}},
		{BudgetConfig{NoFloor: true}, BudgetConfig{Mode: "ratio", Ratio: 0.1, NoFloor: true, Window: 5 * time.Second}},
		{BudgetConfig{Ratio: 0.5, MinRetriesPerSecond: 3, Window: time.Minute},
			BudgetConfig{Mode: "ratio", Ratio: 0.5, MinRetriesPerSecond: 3, Window: time.Minute}},
		{BudgetConfig{Mode: "tokens"}, BudgetConfig{Mode: "tokens", MaxTokens: 10, TokenRatio: 0.1}},
		{BudgetConfig{Mode: "tokens", MaxTokens: 100}, BudgetConfig{Mode: "tokens", MaxTokens: 100, TokenRatio: 0.1}},
		{BudgetConfig{Mode: "tokens", MaxTokens: 0.05}, BudgetConfig{Mode: "tokens", MaxTokens: 0.05, TokenRatio: 0.05}},
	} {
		t.Run(fmt.Sprintf("%+v", tt.in), func(t *testing.T) {
			b := mustBudget(t, tt.in)
			assert.Equal(t, tt.want, b.cfg)
		})
	}
}

// TestBudgetDefaultFloorIsOnePerWindow: the default floor is one retry per
// Window (MinRetriesPerSecond 1/Window.Seconds()), whatever the Window: a
// new client with no requests may retry once, and once again a Window
// later, not before. An explicit MinRetriesPerSecond keeps its rate.
func TestBudgetDefaultFloorIsOnePerWindow(t *testing.T) {
	for _, tc := range []struct {
		cfg       BudgetConfig
		window    time.Duration
		perWindow int
	}{
		{BudgetConfig{}, 5 * time.Second, 1},
		{window10s, 10 * time.Second, 1},
		{BudgetConfig{Window: 49 * time.Second}, 49 * time.Second, 1}, // 49 × (1/49) < 1 in floats
		{BudgetConfig{MinRetriesPerSecond: 1}, 5 * time.Second, 5},
		{BudgetConfig{MinRetriesPerSecond: 0.5, Window: 10 * time.Second}, 10 * time.Second, 5},
	} {
		t.Run(fmt.Sprintf("%+v", tc.cfg), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustBudget(t, tc.cfg)
				for range 3 {
					assert.Equal(t, tc.perWindow, drain(b, 100), "a fresh window's floor")
					bubble.Sleep(tc.window - time.Nanosecond)
					assert.Zero(t, drain(b, 100), "the floor's retries are still in the window")
					bubble.Sleep(time.Nanosecond)
				}
			})
		})
	}
	t.Run("every whole-second window", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			for s := 1; s <= 3600; s++ {
				b := mustBudget(t, BudgetConfig{Window: time.Duration(s) * time.Second})
				if n := drain(b, 10); n != 1 {
					t.Fatalf("Window %ds: the default floor allowed %d retries, want 1", s, n)
				}
			}
		})
	})
}

func TestBudgetConfigJSON(t *testing.T) {
	var cfg BudgetConfig
	require.NoError(t, json.Unmarshal([]byte(`{"ratio":0.2,"minRetriesPerSecond":5,"window":"10s"}`), &cfg))
	assert.Equal(t, BudgetConfig{Ratio: 0.2, MinRetriesPerSecond: 5, Window: 10 * time.Second}, cfg)

	out, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.JSONEq(t, `{"ratio":0.2,"minRetriesPerSecond":5,"window":"10s"}`, string(out))
	assert.Contains(t, string(out), `"window":"10s"`)

	out, err = json.Marshal(BudgetConfig{})
	require.NoError(t, err)
	assert.Equal(t, `{}`, string(out), "the zero config writes nothing")

	for _, c := range []BudgetConfig{
		{Disabled: true, Mode: "ratio", Ratio: 0.25, NoFloor: true, Window: 1500 * time.Millisecond},
		{Mode: "tokens", MaxTokens: 100, TokenRatio: 0.125},
		{MinRetriesPerSecond: 0.5, Window: time.Hour},
	} {
		out, err := json.Marshal(c)
		require.NoError(t, err)
		var back BudgetConfig
		require.NoError(t, json.Unmarshal(out, &back), "%s", out)
		assert.Equal(t, c, back, "%s", out)
	}

	// Integer nanoseconds, as a time.Duration field would take them.
	cfg = BudgetConfig{}
	require.NoError(t, json.Unmarshal([]byte(`{"window":2000000000}`), &cfg))
	assert.Equal(t, 2*time.Second, cfg.Window)

	// Inside a larger config.
	var outer struct {
		Budget BudgetConfig `json:"budget,omitzero"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"budget":{"mode":"tokens","maxTokens":4}}`), &outer))
	assert.Equal(t, BudgetConfig{Mode: "tokens", MaxTokens: 4}, outer.Budget)
	outer.Budget = BudgetConfig{}
	out, err = json.Marshal(outer)
	require.NoError(t, err)
	assert.Equal(t, `{}`, string(out))

	for _, bad := range []string{`{"window":"ten seconds"}`, `{"window":true}`, `{"ratio":"0.1"}`} {
		cfg = BudgetConfig{}
		err := json.Unmarshal([]byte(bad), &cfg)
		require.Error(t, err, bad)
		assert.True(t, strings.HasPrefix(err.Error(), "retry: budget config: "), err.Error())
	}
	err = json.Unmarshal([]byte(`{"window":"ten seconds"}`), &cfg)
	assert.Contains(t, err.Error(), `"ten seconds"`)
}

// FuzzBudgetConfig feeds arbitrary configurations to NewBudget. It must not
// panic, must reject with an error prefixed "retry: budget ", and a budget
// it accepts must survive its JSON round trip and a short random workload
// in a synctest bubble, keeping its invariants.
func FuzzBudgetConfig(f *testing.F) {
	seeds := []BudgetConfig{
		{},
		{Ratio: 0.2, MinRetriesPerSecond: 3, Window: time.Second},
		{NoFloor: true, Window: 100 * time.Millisecond},
		{Ratio: 10, MinRetriesPerSecond: 1e6, Window: time.Hour},
		{Mode: "tokens"},
		{Mode: "tokens", MaxTokens: 0.001, TokenRatio: 0.001},
		{Mode: "tokens", MaxTokens: 1000, TokenRatio: 1000},
		{Disabled: true},
		{Mode: "bogus"},
		{Ratio: math.NaN(), MaxTokens: math.Inf(-1)},
		{Window: -1},
	}
	for i, c := range seeds {
		f.Add(c.Disabled, string(c.Mode), c.Ratio, c.MinRetriesPerSecond, c.NoFloor, int64(c.Window), c.MaxTokens, c.TokenRatio,
			[]byte{0, 3, 2, 3, byte(i), 4, 1, 3, 12, 20, 3, 0, 2, 3})
	}
	f.Fuzz(func(t *testing.T, disabled bool, mode string, ratio, minRetries float64, noFloor bool, window int64,
		maxTokens, tokenRatio float64, ops []byte) {
		cfg := BudgetConfig{
			Disabled: disabled, Mode: BudgetMode(mode), Ratio: ratio, MinRetriesPerSecond: minRetries, NoFloor: noFloor,
			Window: time.Duration(window), MaxTokens: maxTokens, TokenRatio: tokenRatio,
		}
		b, err := NewBudget(cfg)
		if err != nil {
			if b != nil {
				t.Fatalf("NewBudget(%+v) returned a budget and %v", cfg, err)
			}
			if !strings.HasPrefix(err.Error(), "retry: budget ") {
				t.Fatalf("NewBudget(%+v): error %q lacks the prefix", cfg, err)
			}
			return
		}
		if (b == nil) != disabled {
			t.Fatalf("NewBudget(%+v) = %v, nil", cfg, b)
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", cfg, err)
		}
		var back BudgetConfig
		if err := json.Unmarshal(data, &back); err != nil || back != cfg {
			t.Fatalf("JSON round trip of %+v: %s gave %+v, %v", cfg, data, back, err)
		}
		if len(ops) > 64 {
			ops = ops[:64]
		}
		synctest.Test(t, func(t *testing.T) {
			b, err := NewBudget(cfg)
			if err != nil {
				t.Fatalf("NewBudget accepted %+v outside the bubble but not inside: %v", cfg, err)
			}
			exerciseBudget(t, b, ops)
		})
	})
}

// exerciseBudget runs ops against b (possibly nil) inside a bubble and
// checks that its metrics add up and its invariants hold.
func exerciseBudget(t *testing.T, b *Budget, ops []byte) {
	t.Helper()
	window := 10 * time.Second
	if b != nil && b.window.win > 0 {
		window = time.Duration(b.window.win)
	}
	var requests, allowed, refused uint64
	for _, op := range ops {
		arg := op >> 3
		switch op & 7 {
		case 0:
			for range int(arg) + 1 {
				b.Request()
			}
			requests += uint64(arg) + 1
		case 1:
			for range int(arg) + 1 {
				b.Success()
			}
		case 2:
			b.Failure()
		case 3:
			if b.AllowRetry() {
				allowed++
			} else {
				refused++
			}
		case 4:
			bubble.Sleep(window / 16 * time.Duration(arg)) // up to about 2 windows
		case 5:
			bubble.Sleep(time.Duration(arg) * time.Nanosecond)
		case 6:
			b.Metrics()
		case 7:
			bubble.Sleep(time.Duration(arg) * window) // long silences
		}
	}
	m := b.Metrics()
	if b == nil {
		assert.Equal(t, BudgetMetrics{}, m)
		return
	}
	assert.Equal(t, requests, m.Requests)
	assert.Equal(t, allowed, m.Retries)
	assert.Equal(t, refused, m.Exhausted)
	if b.tokens {
		assert.GreaterOrEqual(t, m.Tokens, 0.0)
		assert.LessOrEqual(t, m.Tokens, b.cfg.MaxTokens)
	} else {
		assert.Zero(t, m.Tokens)
		b.mu.Lock()
		checkSamples(t, b)
		b.mu.Unlock()
	}
}

func TestNilBudget(t *testing.T) {
	var b *Budget
	b.Request()
	b.Success()
	b.Failure()
	for range 100 {
		assert.True(t, b.AllowRetry())
	}
	assert.Equal(t, BudgetMetrics{}, b.Metrics())
}

func TestBudgetDisabled(t *testing.T) {
	for _, cfg := range []BudgetConfig{{Disabled: true}, {Disabled: true, Mode: "tokens", MaxTokens: 2}} {
		b, err := NewBudget(cfg)
		assert.NoError(t, err)
		assert.Nil(t, b)
		assert.True(t, b.AllowRetry())
	}
	b, err := NewBudget(BudgetConfig{Disabled: true, Window: time.Millisecond})
	assert.Nil(t, b)
	assert.Error(t, err, "a disabled config is still validated")
}

func TestErrBudgetExhausted(t *testing.T) {
	assert.ErrorIs(t, ErrBudgetExhausted, seawall.ErrRejected)
	assert.ErrorIs(t, fmt.Errorf("call: %w", ErrBudgetExhausted), seawall.ErrRejected)
	assert.Equal(t, "retry: budget exhausted", ErrBudgetExhausted.Error())
	other := seawall.NewRejection("retry: budget exhausted")
	assert.False(t, errors.Is(other, ErrBudgetExhausted), "its own sentinel, distinct from other rejections")
	_, hinted := seawall.RetryAfter(ErrBudgetExhausted)
	assert.False(t, hinted, "no retry-after hint")
}

// TestBudgetHotPathAllocs: Request and Success allocate nothing (timing is
// for the benchmarks).
func TestBudgetHotPathAllocs(t *testing.T) {
	for _, cfg := range []BudgetConfig{{}, {Mode: "tokens"}} {
		b := mustBudget(t, cfg)
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			b.Request()
			b.Success()
		}))
	}
}

// BenchmarkBudgetRequest measures the hot path, Request (and, in tokens
// mode, Success), serial and parallel, against its reference, a per-P
// counter increment, and a shared atomic counter, what a naive budget
// would use.
func BenchmarkBudgetRequest(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  BudgetConfig
	}{{"Ratio", BudgetConfig{}}, {"Tokens", BudgetConfig{Mode: "tokens"}}} {
		bg := mustBudget(b, bc.cfg)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bg.Request()
			}
		})
		b.Run(bc.name+"/Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bg.Request()
				}
			})
		})
		b.Run(bc.name+"/RequestSuccess", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bg.Request()
				bg.Success()
			}
		})
		b.Run(bc.name+"/RequestSuccess/Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bg.Request()
					bg.Success()
				}
			})
		})
	}
	b.Run("Ref/ShardAdd", func(b *testing.B) {
		c := shard.New()
		b.ReportAllocs()
		for b.Loop() {
			c.Add(0)
		}
	})
	b.Run("Ref/ShardAdd/Parallel", func(b *testing.B) {
		c := shard.New()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(0)
			}
		})
	})
	b.Run("Ref/SharedAtomic/Parallel", func(b *testing.B) {
		var n atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
	})
}

// BenchmarkBudgetAllowRetry measures the slow path, serial and parallel
// (where its mutex is contended), with one Request per retry asked for.
func BenchmarkBudgetAllowRetry(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  BudgetConfig
	}{{"Ratio", BudgetConfig{}}, {"Tokens", BudgetConfig{Mode: "tokens"}}} {
		b.Run(bc.name, func(b *testing.B) {
			bg := mustBudget(b, bc.cfg)
			b.ReportAllocs()
			for b.Loop() {
				bg.Request()
				bg.AllowRetry()
			}
		})
		b.Run(bc.name+"/Parallel", func(b *testing.B) {
			bg := mustBudget(b, bc.cfg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bg.Request()
					bg.AllowRetry()
				}
			})
		})
	}
}

// TestBudgetClockBeforeEpoch: a budget made outside a synctest bubble and
// used inside it sees the clock before its epoch; it must not panic.
func TestBudgetClockBeforeEpoch(t *testing.T) {
	b, err := NewBudget(BudgetConfig{})
	require.NoError(t, err)
	synctest.Test(t, func(t *testing.T) {
		for range 100 {
			b.Request()
			b.Failure()
			b.AllowRetry()
		}
		assert.Equal(t, uint64(100), b.Metrics().Requests)
	})
}

func TestBudgetModeAccessor(t *testing.T) {
	for _, m := range []BudgetMode{"", RatioMode, TokensMode} {
		b, err := NewBudget(BudgetConfig{Mode: m})
		require.NoError(t, err)
		want := m
		if m == "" {
			want = RatioMode
		}
		assert.Equal(t, want, b.Mode())
	}
	var none *Budget
	assert.Equal(t, BudgetMode(""), none.Mode())
}
