package retry

import "fmt"

// This file is the tokens mode of a Budget (TokensMode): gRPC's retry
// throttling (gRFC A6). Its algorithm is described in the [Budget] doc; the
// Budget calls it under its mutex.

// tokensDefaults returns c, a valid tokens-mode config, with the defaults
// applied.
func (c BudgetConfig) tokensDefaults() BudgetConfig {
	if c.MaxTokens == 0 {
		c.MaxTokens = defaultMaxTokens
	}
	if c.TokenRatio == 0 {
		c.TokenRatio = min(defaultTokRatio, c.MaxTokens)
	}
	return c
}

// validateTokens validates c as a tokens-mode config.
func (c *BudgetConfig) validateTokens() error {
	maxTokens := c.MaxTokens // the bound of TokenRatio, once MaxTokens is valid
	if maxTokens == 0 {
		maxTokens = defaultMaxTokens
	}
	switch {
	case c.Ratio != 0:
		return c.otherMode("Ratio", c.Ratio)
	case c.MinRetriesPerSecond != 0:
		return c.otherMode("MinRetriesPerSecond", c.MinRetriesPerSecond)
	case c.NoFloor:
		return c.otherMode("NoFloor", c.NoFloor)
	case c.Window != 0:
		return c.otherMode("Window", c.Window)
	case outside(c.MaxTokens, 0, maxTokensLimit):
		return badBudget("MaxTokens", c.MaxTokens, fmt.Sprintf("out of range (0,%v]", maxTokensLimit))
	case outside(c.TokenRatio, 0, maxTokens):
		return badBudget("TokenRatio", c.TokenRatio, fmt.Sprintf("out of range (0,%v] (MaxTokens)", maxTokens))
	}
	return nil
}

// tokenBucket is the state of a tokens-mode budget: the token count, into
// which the successes counted on the hot path are folded lazily. The
// success count is given. It is not safe for concurrent use: the Budget
// holds its mutex.
type tokenBucket struct {
	max, ratio float64 // MaxTokens, TokenRatio
	tok        float64 // tokens, successes up to folded included
	folded     uint64  // successes folded into tok
}

// init sets t up for cfg, a tokens-mode config with defaults applied: full.
func (t *tokenBucket) init(cfg BudgetConfig) {
	t.max, t.ratio = cfg.MaxTokens, cfg.TokenRatio
	t.tok = cfg.MaxTokens
}

// fold adds the successes counted since the last visit to the tokens,
// capped at MaxTokens, successes having been counted so far.
func (t *tokenBucket) fold(successes uint64) {
	if successes > t.folded {
		t.tok = min(t.max, t.tok+t.ratio*float64(successes-t.folded))
		t.folded = successes
	}
}

// failure takes a token (down to 0) for a failed attempt.
func (t *tokenBucket) failure(successes uint64) {
	t.fold(successes)
	t.tok = max(t.tok-1, 0)
}

// allow reports whether a retry may be made: whether the count is above
// MaxTokens/2. It takes no token.
func (t *tokenBucket) allow(successes uint64) bool {
	t.fold(successes)
	return t.tok > t.max/2
}

// tokens returns the token count.
func (t *tokenBucket) tokens(successes uint64) float64 {
	t.fold(successes)
	return t.tok
}
