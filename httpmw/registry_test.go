package httpmw

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
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
	_, err = NewTransport(nil, WithBreakers(g, nil), WithThrottle(th), WithHedge(hedge.Config{}), WithRegistry(reg, "accounts"))
	require.NoError(t, err)
	assert.Equal(t, map[string]registry.Kind{
		"accounts.retry": registry.KindRetry, "accounts.retry.budget": registry.KindBudget,
		"accounts.breakers": registry.KindBreakerGroup, "accounts.throttle": registry.KindThrottle,
		"accounts.hedge": registry.KindHedge,
	}, names(reg))

	// A second transport sharing the group: the group keeps its name.
	_, err = NewTransport(nil, WithBreakers(g, nil), WithRegistry(reg, "payments"))
	require.NoError(t, err)
	n, _ := reg.NameOf(g)
	assert.Equal(t, "accounts.breakers", n)
	_, ok := reg.Lookup("payments.retry")
	assert.True(t, ok)

	// The name is taken: nothing of the third transport is registered.
	before := reg.Len()
	_, err = NewTransport(nil, WithRegistry(reg, "accounts"))
	assert.ErrorContains(t, err, `httpmw: WithRegistry: registry: name "accounts.retry" is taken by a retry`)
	assert.Equal(t, before, reg.Len())

	// In another registry already.
	other, _ := registry.New()
	_, err = NewTransport(nil, WithBreakers(g, nil), WithRegistry(other, "x"))
	assert.ErrorContains(t, err, "registered already, in another registry")
	assert.Equal(t, 0, other.Len(), "all or nothing")

	_, err = NewTransport(nil, WithRegistry(nil, "x"))
	assert.EqualError(t, err, `httpmw: WithRegistry(nil, "x")`)
	_, err = NewTransport(nil, WithRegistry(reg, "bad name"))
	assert.ErrorContains(t, err, `httpmw: WithRegistry: registry: name "bad name" has ' '`)
}

func TestServerWithRegistry(t *testing.T) {
	reg, err := registry.New()
	require.NoError(t, err)
	l, _ := ratelimit.New(ratelimit.Config{Rate: 100})
	k, _ := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 10}})
	b, _ := bulkhead.New(bulkhead.Config{})
	a, _ := adaptive.New(adaptive.Config{})
	inj, _ := fault.New(fault.Config{})
	_, err = NewServer(WithRateLimit(l), WithKeyedRateLimit(k, RemoteIP), WithLoadShed(b), WithAdaptiveLimit(a),
		WithFaultInjection(inj, FaultResponse{}), WithServerRegistry(reg, "api"))
	require.NoError(t, err)
	assert.Equal(t, map[string]registry.Kind{
		"api.ratelimit": registry.KindRateLimit, "api.keyed_ratelimit": registry.KindKeyedLimit,
		"api.load_shed": registry.KindBulkhead, "api.adaptive": registry.KindAdaptive, "api.fault": registry.KindFault,
	}, names(reg))
}
