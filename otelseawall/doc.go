// Package otelseawall reports the policies of a seawall registry as
// OpenTelemetry metrics: breakers and breaker groups, retries and retry
// budgets, bulkheads, adaptive limiters, rate limiters and throttles.
//
// Register the policies in a [registry.Registry], then hand the registry to
// [NewMetrics]:
//
//	reg, _ := registry.New()
//	br, _ := breaker.New(breaker.Config{})
//	_ = reg.Register("accounts", br)
//	m, err := otelseawall.NewMetrics(reg, otelseawall.WithMeterProvider(mp))
//	if err != nil { ... }
//	defer m.Close()
//
// Every series carries the attribute seawall.policy, the name the policy is
// registered under; the other attributes take a few fixed values (a
// breaker's state, a call's outcome, a retry's reason), never a user's key,
// a URL or an error's text, so a keyed limiter or a breaker group of a
// million keys still reports a handful of series. The metric names and the
// attribute keys are the Metric and Attr constants; the README has a table
// of them all.
//
// The policies' success paths pay nothing for it: counters and gauges are
// asynchronous instruments that read the policies' snapshots when the
// reader collects, and the histograms are fed from the registry's events,
// which only slow paths emit (a call admitted after waiting, a call that
// retried).
//
// Its meter is named [ScopeName]; the meter provider is
// otel.GetMeterProvider() unless [WithMeterProvider] says otherwise.
package otelseawall
