// Package fault injects faults into calls, for game days and tests: it
// delays a fraction of calls, fails a fraction of them with an error, and
// can be switched on and off while a service runs, so that a team can see
// whether its breakers, retries, budgets and fallbacks hold before a real
// outage tests them. Netflix's Chaos Monkey is the ancestor; the latency
// and outcome strategies of Polly and Envoy's HTTP fault filter are the
// models.
//
//	inj, err := fault.New(fault.Config{
//		ErrorRate:   0.3,
//		LatencyRate: 0.2, Latency: 200 * time.Millisecond, Jitter: 50 * time.Millisecond,
//	})
//	...
//	inj.Enable() // the game day starts
//	err = inj.Do(ctx, callDependency)
//	inj.Disable() // and ends
//
// # Safe by default
//
// A new Injector injects nothing until [Injector.Enable] is called (or
// Config.Enabled is set): a Config loaded at start-up never injects a
// fault by accident. Config.Select narrows the faults to the calls it
// picks, one tenant or one test's requests. The middleware of
// seawall/httpmw and seawall/grpcmw injects faults only through an
// Injector: a request header alone can never turn faults on.
//
// # Errors
//
// An injected failure returns [ErrInjected], which is not a seawall
// rejection: a breaker counts it and a retry retries it, as a dependency's
// error. Config.Err can be a rejection (seawall.NewRejection, with a
// retry-after hint) to rehearse overload instead. A call whose context
// ends while it is delayed returns the context's error unchanged.
//
// # Two layers
//
// [Injector.Apply] decides one call's faults, waits its delay and returns
// its error, leaving the call to the caller (middleware answers with a
// status in place of running its handler). [Injector.Do] runs an operation
// after Apply and satisfies seawall.Policy, so an Injector composes with
// other policies in a seawall.Pipeline: put it innermost, where the
// dependency is, so that every policy outside it sees the faults.
//
// # Observability and cost
//
// [Injector.Metrics] counts the calls seen while enabled, the delays and
// the errors injected. While the Injector is off, a call costs one atomic
// load and allocates nothing; while it is on, a call pays a few atomic
// adds, one or two random numbers and, if delayed, a timer.
package fault
