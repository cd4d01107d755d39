package otelseawall

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the meter and of the logger
// this package creates: the package's import path.
const ScopeName = "github.com/seawall-go/seawall/otelseawall"

// config is what the options set, shared by the metrics and the tracing of
// this package.
type config struct {
	meterProvider  metric.MeterProvider // NewMetrics
	loggerProvider log.LoggerProvider   // NewAttemptObserver
	spanEvents     bool                 // NewAttemptObserver
}

// An Option configures the instrumentation: [WithMeterProvider] for
// NewMetrics, [WithLoggerProvider] and [WithSpanEvents] for
// NewAttemptObserver (each ignores the others' options).
type Option func(*config)

// newConfig applies opts over the defaults.
func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.loggerProvider == nil {
		c.loggerProvider = otel.GetLoggerProvider()
	}
	return c
}

// WithMeterProvider makes the instrumentation create its instruments with
// a meter of p. A nil p, like no option, means the global provider,
// otel.GetMeterProvider(), read when the instrumentation is created.
func WithMeterProvider(p metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = p }
}
