package otelseawall_test

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/otelseawall"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// benchRegistry returns a registry reported by NewMetrics over a real SDK
// meter provider with a manual reader.
func benchRegistry(b *testing.B) (*registry.Registry, *sdkmetric.ManualReader) {
	b.Helper()
	reg, err := registry.New()
	if err != nil {
		b.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m, err := otelseawall.NewMetrics(reg, otelseawall.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = m.Close()
		_ = mp.Shutdown(context.Background())
	})
	return reg, reader
}

// BenchmarkSuccessPath compares each policy's success path bare and
// registered in an instrumented registry: the instrumentation must add
// nothing to it.
func BenchmarkSuccessPath(b *testing.B) {
	for _, mode := range []string{"bare", "instrumented"} {
		register := func(b *testing.B, name string, p any) {
			if mode == "bare" {
				return
			}
			reg, reader := benchRegistry(b)
			if err := reg.Register(name, p); err != nil {
				b.Fatal(err)
			}
			var rm metricdata.ResourceMetrics // one collection, so the caches are warm
			if err := reader.Collect(context.Background(), &rm); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("breaker/mode="+mode, func(b *testing.B) {
			br, _ := breaker.New(breaker.Config{})
			register(b, "b", br)
			b.ReportAllocs()
			for b.Loop() {
				p, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				p.Done(nil)
			}
		})
		b.Run("ratelimit/mode="+mode, func(b *testing.B) {
			l, err := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			register(b, "l", l)
			b.ReportAllocs()
			for b.Loop() {
				l.Allow()
			}
		})
		b.Run("bulkhead/mode="+mode, func(b *testing.B) {
			bh, _ := bulkhead.New(bulkhead.Config{})
			register(b, "bh", bh)
			b.ReportAllocs()
			for b.Loop() {
				if !bh.TryAcquire() {
					b.Fatal("full")
				}
				bh.Release()
			}
		})
		b.Run("retry/mode="+mode, func(b *testing.B) {
			r, _ := retry.New(retry.Config{})
			register(b, "r", r)
			ctx := context.Background()
			op := func(context.Context) error { return nil }
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Do(ctx, op); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCollect1000 is one collection of 1000 registered policies, of
// every kind (impl=otelseawall), beside its floor (impl=floor): one
// collection, through the same SDK, of a callback that observes as many
// series with attribute sets made in advance and nothing else to do, which
// any design reporting those series through asynchronous instruments
// pays.
func BenchmarkCollect1000(b *testing.B) {
	ctx := context.Background()
	reg, reader := benchRegistry(b)
	for i := range 1000 {
		var p any
		switch i % 8 {
		case 0:
			p, _ = breaker.New(breaker.Config{})
		case 1:
			p, _ = breaker.NewGroup(breaker.Config{}, 16)
		case 2:
			p, _ = retry.New(retry.Config{}) // and its budget
		case 3:
			p, _ = bulkhead.New(bulkhead.Config{})
		case 4:
			p, _ = adaptive.New(adaptive.Config{})
		case 5:
			p, _ = ratelimit.New(ratelimit.Config{Rate: 100})
		case 6:
			p, _ = ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 100}})
		case 7:
			p, _ = throttle.New(throttle.Config{})
		}
		if err := reg.Register(fmt.Sprintf("p%04d", i), p); err != nil {
			b.Fatal(err)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		b.Fatal(err)
	}
	series := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				series += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				series += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				series += len(d.DataPoints)
			}
		}
	}
	b.Run("impl=otelseawall", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := reader.Collect(ctx, &rm); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(series), "series")
	})
	b.Run("impl=floor", func(b *testing.B) {
		fr := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(fr))
		defer mp.Shutdown(ctx)
		meter := mp.Meter("floor")
		c, err := meter.Int64ObservableCounter("floor")
		if err != nil {
			b.Fatal(err)
		}
		opts := make([]metric.ObserveOption, series)
		for i := range opts {
			opts[i] = metric.WithAttributeSet(attribute.NewSet(attribute.Int("i", i)))
		}
		if _, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			for i, opt := range opts {
				o.ObserveInt64(c, int64(i), opt)
			}
			return nil
		}, c); err != nil {
			b.Fatal(err)
		}
		var rm metricdata.ResourceMetrics
		if err := fr.Collect(ctx, &rm); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := fr.Collect(ctx, &rm); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(series), "series")
	})
}
