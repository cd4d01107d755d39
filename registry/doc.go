// Package registry names a service's resilience policies, so that
// telemetry, a status page and a logger can find them.
//
// Create a [Registry], register each policy under a name, and hand the
// registry to what reads it: the OpenTelemetry instrumentation
// (github.com/seawall-go/seawall/otelseawall, a module of its own), the
// status page ([github.com/seawall-go/seawall/status]), or a script reading
// [Registry.Snapshot]. The middleware's options WithRegistry (in httpmw and
// grpcmw) register the policies a transport or server uses, under a prefix.
//
//	reg, _ := registry.New(registry.WithLogger(slog.Default()))
//	br, _ := breaker.New(breaker.Config{})
//	_ = reg.Register("accounts", br)
//
// Nothing is global: a program may keep several registries (one per
// tenant, say), and a policy belongs to one of them at most.
package registry
