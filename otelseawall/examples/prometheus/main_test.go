package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScrape serves the handler on a real server and scrapes it.
func TestScrape(t *testing.T) {
	reg, br, _, rl, err := policies()
	require.NoError(t, err)
	h, shutdown, err := Handler(reg)
	require.NoError(t, err)
	defer shutdown()
	srv := httptest.NewServer(h)
	defer srv.Close()

	_ = br.Do(context.Background(), func(context.Context) error { return nil })
	rl.Allow()

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(body)
	assert.Contains(t, text, `seawall_breaker_state{`)
	assert.Regexp(t, `seawall_breaker_state\{[^}]*seawall_breaker_state="closed"[^}]*\} 1`, text)
	assert.Regexp(t, `seawall_breaker_state\{[^}]*seawall_policy="accounts"`, text)
	assert.Regexp(t, `seawall_ratelimit_calls_total\{[^}]*seawall_policy="login"`, text)
	assert.Regexp(t, `seawall_ratelimit_calls_total\{[^}]*seawall_outcome="admitted"[^}]*\} 1`, text)
	assert.Regexp(t, `seawall_retry_gave_up_total\{[^}]*seawall_retry_reason="attempts_exhausted"`, text)
	if t.Failed() {
		t.Log(text)
	}
}
