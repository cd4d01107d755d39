package retry

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBudgetTokens replays gRFC A6's retry throttling: 10 tokens, 0.1 a
// success, retries while tokens > 5.
func TestBudgetTokens(t *testing.T) {
	type step struct {
		successes, failures int
		tokens              float64
		allow               bool
	}
	run := func(t *testing.T, cfg BudgetConfig, steps []step) {
		t.Helper()
		b := mustBudget(t, cfg)
		var retries, exhausted uint64
		for i, s := range steps {
			for range s.successes {
				b.Success()
			}
			for range s.failures {
				b.Failure()
			}
			assert.InDelta(t, s.tokens, b.Metrics().Tokens, 1e-9, "step %d: tokens", i)
			assert.Equal(t, s.allow, b.AllowRetry(), "step %d: AllowRetry", i)
			if s.allow {
				retries++
			} else {
				exhausted++
			}
			assert.InDelta(t, s.tokens, b.Metrics().Tokens, 1e-9, "step %d: AllowRetry takes no token", i)
		}
		m := b.Metrics()
		assert.Equal(t, retries, m.Retries)
		assert.Equal(t, exhausted, m.Exhausted)
	}
	t.Run("defaults", func(t *testing.T) {
		run(t, BudgetConfig{Mode: "tokens"}, []step{
			{tokens: 10, allow: true},
			{failures: 4, tokens: 6, allow: true},
			{failures: 1, tokens: 5, allow: false}, // not above MaxTokens/2
			{successes: 10, tokens: 6, allow: true},
			{failures: 1, tokens: 5, allow: false},
			{successes: 1, tokens: 5.1, allow: true},
			{successes: 1000, tokens: 10, allow: true}, // capped at MaxTokens
			{failures: 100, tokens: 0, allow: false},   // floored at 0
			{successes: 50, tokens: 5, allow: false},   // from 0, not from -90
			{successes: 100, failures: 1, tokens: 9, allow: true},
		})
	})
	t.Run("custom", func(t *testing.T) {
		run(t, BudgetConfig{Mode: "tokens", MaxTokens: 3, TokenRatio: 0.5}, []step{
			{tokens: 3, allow: true},
			{failures: 1, tokens: 2, allow: true},
			{failures: 1, tokens: 1, allow: false},
			{successes: 1, tokens: 1.5, allow: false},
			{successes: 1, tokens: 2, allow: true},
			{successes: 9, tokens: 3, allow: true},
		})
	})
}

// TestBudgetTokensFoldIsExact: folding successes lazily gives the token
// count of applying every attempt in order, capping after each success.
func TestBudgetTokensFoldIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		cfg := BudgetConfig{Mode: "tokens", MaxTokens: 1 + 20*rng.Float64()}
		cfg.TokenRatio = cfg.MaxTokens * rng.Float64() / 3
		b := mustBudget(t, cfg)
		cfg = b.cfg // with defaults
		want := cfg.MaxTokens
		for range 500 {
			switch rng.IntN(10) {
			case 0, 1, 2:
				b.Failure()
				want = max(want-1, 0)
			case 3:
				assert.Equal(t, want > cfg.MaxTokens/2, b.AllowRetry())
			default:
				b.Success()
				want = min(want+cfg.TokenRatio, cfg.MaxTokens)
			}
		}
		assert.InDelta(t, want, b.Metrics().Tokens, 1e-6)
	}
}
