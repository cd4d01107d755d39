package otelseawall_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/otelseawall"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
)

// sharedLimiter stands for a redisrate limiter (its own module, which this
// one does not require): a registry.SharedLimiter with fixed counts.
type sharedLimiter struct{ slot obs.Slot }

func (s *sharedLimiter) Registration() *obs.Slot { return &s.slot }
func (s *sharedLimiter) SharedLimitMetrics() registry.SharedLimitMetrics {
	return registry.SharedLimitMetrics{RateLimitMetrics: registry.RateLimitMetrics{
		Metrics: ratelimit.Metrics{Allowed: 10, Limited: 4}, Rate: 100, Burst: 10,
		Shared: &registry.SharedStore{Store: "redis", Fallback: "local", FallbackAllowed: 3, FallbackLimited: 1, Errors: 2, Timeouts: 1},
	}}
}

func TestSharedLimiter(t *testing.T) {
	reg, reader := instrument(t)
	require.NoError(t, reg.Register("fleet", &sharedLimiter{}))
	got := collect(t, reader)
	out := func(o string) attribute.Set { return pol("fleet", otelseawall.AttrOutcome.String(o)) }
	for _, want := range []metricdata.Metrics{
		counter(otelseawall.MetricRateLimitCalls, "{call}", ip(10, out("admitted")), ip(4, out("rejected"))),
		counter(otelseawall.MetricRateLimitFallbackCalls, "{call}", ip(3, out("admitted")), ip(1, out("rejected"))),
		counter(otelseawall.MetricRateLimitStoreErrors, "{error}", ip(2, pol("fleet"))),
	} {
		g := got[want.Name]
		metricdatatest.AssertEqual(t, want, metricdata.Metrics{Name: g.Name, Unit: g.Unit, Data: g.Data}, metricdatatest.IgnoreTimestamp())
	}
}
