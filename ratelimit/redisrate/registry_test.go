package redisrate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/registry"
)

// TestRegistry: a registry takes the shared limiters as rate limiters, and
// their snapshots say what Redis decided and what the fallback did.
func TestRegistry(t *testing.T) {
	s := startRedis(t)
	// A generous Timeout, as newLimiter sets: this test is about the
	// snapshot, and a first call under -race on a busy machine can take
	// more than the default 5ms (which would send it to the fallback). A
	// rate of 0.01/s adds no token while the test runs, however slowly.
	l, err := New(s.client(t), Config{Key: "accounts", Rate: 0.01, Burst: 2, Instances: 2, Timeout: time.Second})
	require.NoError(t, err)
	k, err := NewKeyed(s.client(t), Config{Rate: 0.01, Burst: 2, Fallback: FailClosed, Timeout: time.Second})
	require.NoError(t, err)
	reg, err := registry.New()
	require.NoError(t, err)
	require.NoError(t, reg.Register("accounts.shared", l))
	require.NoError(t, reg.Register("tenants.shared", k))
	var nilLimiter *Limiter
	assert.ErrorContains(t, reg.Register("nil", nilLimiter), "cannot register a nil *redisrate.Limiter")

	for range 3 {
		l.Allow() // 2 admitted by Redis, 1 refused
	}
	l.Breaker().ForceOpen()
	l.Allow() // the local share: burst 1
	l.Allow() // refused by it
	k.Allow("t1")

	snap := reg.Snapshot()
	require.Len(t, snap.Policies, 2)
	p := snap.Policies[0]
	assert.Equal(t, registry.KindRateLimit, p.Kind)
	require.NotNil(t, p.RateLimit)
	assert.Equal(t, uint64(3), p.RateLimit.Allowed)
	assert.Equal(t, uint64(2), p.RateLimit.Limited)
	assert.Equal(t, 0.01, p.RateLimit.Rate)
	assert.Equal(t, &registry.SharedStore{Store: "redis", Fallback: "local", Breaker: breaker.ForcedOpen,
		FallbackAllowed: 1, FallbackLimited: 1}, p.RateLimit.Shared)
	q := snap.Policies[1]
	assert.Equal(t, registry.KindKeyedLimit, q.Kind)
	assert.Equal(t, uint64(1), q.RateLimit.Allowed)
	assert.Equal(t, "fail-closed", q.RateLimit.Shared.Fallback)
}
