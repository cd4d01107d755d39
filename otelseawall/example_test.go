package otelseawall_test

import (
	"context"
	"errors"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/otelseawall"
	"github.com/seawall-go/seawall/registry"
)

// Report a registry's policies to a meter provider, then read the breaker
// state series after tripping the breaker.
func Example() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	reg, _ := registry.New()
	br, _ := breaker.New(breaker.Config{ConsecutiveFailures: 1})
	_ = reg.Register("accounts", br)

	m, err := otelseawall.NewMetrics(reg, otelseawall.WithMeterProvider(mp))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	_ = br.Do(context.Background(), func(context.Context) error { return errors.New("down") })

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, met := range sm.Metrics {
			if met.Name != otelseawall.MetricBreakerState {
				continue
			}
			for _, p := range met.Data.(metricdata.Gauge[int64]).DataPoints {
				policy, _ := p.Attributes.Value(otelseawall.AttrPolicy)
				state, _ := p.Attributes.Value(otelseawall.AttrBreakerState)
				fmt.Printf("%s{%s=%q, %s=%q} %d\n", met.Name, otelseawall.AttrPolicy, policy.AsString(),
					otelseawall.AttrBreakerState, state.AsString(), p.Value)
			}
		}
	}
	// Output:
	// seawall.breaker.state{seawall.policy="accounts", seawall.breaker.state="open"} 1
}
