package grpcmw

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

func names(r *registry.Registry) map[string]registry.Kind {
	m := map[string]registry.Kind{}
	r.Range(func(p registry.Policy) bool { m[p.Name] = p.Kind; return true })
	return m
}

func TestTransportWithRegistry(t *testing.T) {
	reg, err := registry.New()
	require.NoError(t, err)
	g, err := breaker.NewGroup(breaker.Config{}, 0)
	require.NoError(t, err)
	th, err := throttle.New(throttle.Config{})
	require.NoError(t, err)
	_, err = NewClient(WithRetry(retry.Config{}), WithBreakers(g, BreakerPerMethod), WithThrottle(th), WithHedge(hedge.Config{}), WithRegistry(reg, "accounts"))
	require.NoError(t, err)
	assert.Equal(t, map[string]registry.Kind{
		"accounts.retry": registry.KindRetry, "accounts.retry.budget": registry.KindBudget,
		"accounts.breakers": registry.KindBreakerGroup, "accounts.throttle": registry.KindThrottle,
		"accounts.hedge": registry.KindHedge,
	}, names(reg))
	for _, ps := range reg.Snapshot().Policies {
		if ps.Name == "accounts.hedge" {
			assert.NotNil(t, ps.Hedge, "the hedge's metrics in the snapshot")
		}
	}

	// A second transport sharing the group: the group keeps its name.
	_, err = NewClient(WithRetry(retry.Config{}), WithBreakers(g, BreakerPerMethod), WithRegistry(reg, "payments"))
	require.NoError(t, err)
	n, _ := reg.NameOf(g)
	assert.Equal(t, "accounts.breakers", n)
	_, ok := reg.Lookup("payments.retry")
	assert.True(t, ok)

	// The name is taken: nothing of the third transport is registered.
	before := reg.Len()
	_, err = NewClient(WithRetry(retry.Config{}), WithRegistry(reg, "accounts"))
	assert.ErrorContains(t, err, `grpcmw: WithRegistry: registry: name "accounts.retry" is taken by a retry`)
	assert.Equal(t, before, reg.Len())

	// In another registry already.
	other, _ := registry.New()
	_, err = NewClient(WithBreakers(g, BreakerPerMethod), WithRegistry(other, "x"))
	assert.ErrorContains(t, err, "registered already, in another registry")
	assert.Equal(t, 0, other.Len(), "all or nothing")

	_, err = NewClient(WithRegistry(nil, "x"))
	assert.EqualError(t, err, `grpcmw: WithRegistry(nil, "x")`)
	_, err = NewClient(WithRegistry(reg, "bad name"))
	assert.ErrorContains(t, err, `grpcmw: WithRegistry: registry: name "bad name" has ' '`)
}

func TestServerWithRegistry(t *testing.T) {
	reg, err := registry.New()
	require.NoError(t, err)
	l, _ := ratelimit.New(ratelimit.Config{Rate: 100})
	k, _ := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 10}})
	b, _ := bulkhead.New(bulkhead.Config{})
	a, _ := adaptive.New(adaptive.Config{})
	_, err = NewServer(WithRateLimit(l), WithKeyedRateLimit(k, MetadataKey("tenant")), WithLoadShed(b, codes.Unavailable), WithAdaptiveLimit(a),
		WithServerRegistry(reg, "api"))
	require.NoError(t, err)
	assert.Equal(t, map[string]registry.Kind{
		"api.ratelimit": registry.KindRateLimit, "api.keyed_ratelimit": registry.KindKeyedLimit,
		"api.load_shed": registry.KindBulkhead, "api.adaptive": registry.KindAdaptive,
	}, names(reg))
}
