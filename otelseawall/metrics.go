package otelseawall

import (
	"context"
	"errors"
	"maps"
	"math"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fallback"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
	"github.com/seawall-go/seawall/timeout"
)

// The names of the metrics, by policy kind. The README's table gives each
// one's instrument, unit and attributes.
const (
	// MetricBreakerState is one series per breaker, of value 1, whose
	// AttrBreakerState is the breaker's state now ("closed", "open",
	// "half-open", "forced-open", "disabled").
	//
	// The state is an attribute rather than a numeric code because state
	// names read naturally in queries and alerts (state="open"), while a
	// code averages into nonsense across breakers (the mean of closed and
	// open is not half-open); and because one series per breaker keeps the
	// cardinality at one. When the state changes, the previous state's
	// series stops being reported (the SDK exports only the series an
	// asynchronous instrument observed at the last collection), which
	// Prometheus reads as stale.
	MetricBreakerState = "seawall.breaker.state"
	// MetricBreakerCalls counts a breaker's calls by AttrOutcome: success,
	// failure, ignored (calls admitted, whose outcome was recorded) and
	// rejected. Their sum is the calls admitted plus those rejected.
	MetricBreakerCalls = "seawall.breaker.calls"
	// MetricBreakerSlowCalls counts a breaker's calls at or above its slow
	// call threshold. It is a metric of its own because a slow call is also
	// a success or a failure in MetricBreakerCalls.
	MetricBreakerSlowCalls = "seawall.breaker.slow_calls"
	// MetricBreakerTransitions counts a breaker's state changes by
	// AttrFromState and AttrToState; only the pairs that happened are
	// reported, to keep the series few.
	MetricBreakerTransitions = "seawall.breaker.transitions"
	// MetricBreakerProbeIn is, while a breaker is open, the time until its
	// next probe is admitted, in seconds; 0 in the other states.
	MetricBreakerProbeIn = "seawall.breaker.probe_in"

	// MetricGroupKeys is the number of breakers a breaker group holds.
	// A group never reports a series per key.
	MetricGroupKeys = "seawall.breaker.group.keys"
	// MetricGroupBreakers is the number of a group's breakers in each
	// state, by AttrBreakerState: five series per group.
	MetricGroupBreakers = "seawall.breaker.group.breakers"
	// MetricGroupEvictions counts the keys a group forgot to make room.
	MetricGroupEvictions = "seawall.breaker.group.evictions"
	// MetricGroupCalls is the calls of a group's breakers summed, by
	// AttrOutcome as MetricBreakerCalls. The sums cover the breakers the
	// group holds now, so they fall when it forgets a key: that is why they
	// are up-down counters, under names of their own, and not counters
	// (which must never fall).
	MetricGroupCalls = "seawall.breaker.group.calls"
	// MetricGroupSlowCalls is the slow calls of a group's breakers summed,
	// an up-down counter for the same reason as MetricGroupCalls.
	MetricGroupSlowCalls = "seawall.breaker.group.slow_calls"

	// MetricRetryRetries counts the retries a Retry made (attempts after the
	// first).
	MetricRetryRetries = "seawall.retry.retries"
	// MetricRetryGaveUp counts the calls of a Retry that ended in an error,
	// by AttrRetryReason, the reason retrying stopped (retry.Reason's names).
	MetricRetryGaveUp = "seawall.retry.gave_up"
	// MetricClientCallRetries is a histogram of the retries of each call
	// that retried, modelled on gRPC's grpc.client.call.retries (gRFC A96):
	// a call that made no retry is not recorded. gRPC's .hedges will come
	// with seawall's hedge policy.
	MetricClientCallRetries = "seawall.client.call.retries"
	// MetricClientCallRetryDelay is a histogram of the total time, in
	// seconds, that each call that retried waited between its attempts
	// (gRPC's grpc.client.call.retry_delay).
	MetricClientCallRetryDelay = "seawall.client.call.retry_delay"

	// MetricBudgetRequests counts the requests (first attempts) a retry
	// budget has seen.
	MetricBudgetRequests = "seawall.retry.budget.requests"
	// MetricBudgetRetriesAllowed counts the retries a budget allowed.
	MetricBudgetRetriesAllowed = "seawall.retry.budget.retries_allowed"
	// MetricBudgetExhausted counts the retries a budget refused.
	MetricBudgetExhausted = "seawall.retry.budget.exhausted"
	// MetricBudgetTokens is a tokens-mode budget's token count. It is not
	// reported for a ratio-mode budget.
	MetricBudgetTokens = "seawall.retry.budget.tokens"

	// MetricBulkheadInFlight is the number of calls holding a bulkhead's
	// slot.
	MetricBulkheadInFlight = "seawall.bulkhead.in_flight"
	// MetricBulkheadWaiting is the number of calls in a bulkhead's queue.
	MetricBulkheadWaiting = "seawall.bulkhead.waiting"
	// MetricBulkheadLimit is the number of calls that may hold a slot at
	// once.
	MetricBulkheadLimit = "seawall.bulkhead.limit"
	// MetricBulkheadAdmitted counts the slots a bulkhead gave.
	MetricBulkheadAdmitted = "seawall.bulkhead.admitted"
	// MetricBulkheadRejected counts the calls a bulkhead refused.
	MetricBulkheadRejected = "seawall.bulkhead.rejected"
	// MetricBulkheadWait is a histogram of the time, in seconds, that the
	// calls admitted after waiting spent in the queue; calls admitted at
	// once are not recorded.
	MetricBulkheadWait = "seawall.bulkhead.wait"

	// MetricAdaptiveInFlight is the number of calls holding an adaptive
	// limiter's permit.
	MetricAdaptiveInFlight = "seawall.adaptive.in_flight"
	// MetricAdaptiveWaiting is the number of calls in its queue.
	MetricAdaptiveWaiting = "seawall.adaptive.waiting"
	// MetricAdaptiveLimit is its limit now.
	MetricAdaptiveLimit = "seawall.adaptive.limit"
	// MetricAdaptiveAdmitted counts the permits it gave.
	MetricAdaptiveAdmitted = "seawall.adaptive.admitted"
	// MetricAdaptiveRejected counts the calls it refused.
	MetricAdaptiveRejected = "seawall.adaptive.rejected"
	// MetricAdaptiveWait is a histogram of the time, in seconds, that the
	// calls admitted after waiting spent in its queue.
	MetricAdaptiveWait = "seawall.adaptive.wait"
	// MetricAdaptiveLatencyBaseline is the latency, in seconds, the limiter
	// takes for the dependency's own; not reported until first measured.
	MetricAdaptiveLatencyBaseline = "seawall.adaptive.latency.baseline"
	// MetricAdaptiveLatencySampled is the latency, in seconds, of the
	// limiter's last window; not reported until first sampled.
	MetricAdaptiveLatencySampled = "seawall.adaptive.latency.sampled"

	// MetricRateLimitCalls counts a rate limiter's calls (a keyed limiter's,
	// all keys together) by AttrOutcome: admitted or rejected.
	MetricRateLimitCalls = "seawall.ratelimit.calls"
	// MetricRateLimitKeys is the number of keys a keyed limiter remembers.
	// A keyed limiter never reports a series per key.
	MetricRateLimitKeys = "seawall.ratelimit.keys"
	// MetricRateLimitFallbackCalls counts the calls a shared limiter
	// (redisrate) decided without its store, by AttrOutcome; they are
	// among MetricRateLimitCalls too.
	MetricRateLimitFallbackCalls = "seawall.ratelimit.fallback.calls"
	// MetricRateLimitStoreErrors counts a shared limiter's calls to its
	// store that failed or timed out.
	MetricRateLimitStoreErrors = "seawall.ratelimit.store.errors"

	// MetricThrottleProbability is a throttle's rejection probability now.
	MetricThrottleProbability = "seawall.throttle.probability"
	// MetricThrottleThrottled counts the requests a throttle rejected
	// locally.
	MetricThrottleThrottled = "seawall.throttle.throttled"
	// MetricThrottleRefused counts the requests the backend refused.
	MetricThrottleRefused = "seawall.throttle.refused"

	// MetricFaultEnabled is 1 while a fault injector is on, 0 otherwise:
	// an alert on it catches a game day left running.
	MetricFaultEnabled = "seawall.fault.enabled"
	// MetricFaultCalls counts the calls a fault injector saw while on.
	MetricFaultCalls = "seawall.fault.calls"
	// MetricFaultDelays and MetricFaultErrors count the delays and the
	// errors it injected.
	MetricFaultDelays = "seawall.fault.delays"
	MetricFaultErrors = "seawall.fault.errors"

	// MetricTimeoutCalls counts the calls through a timeout, and
	// MetricTimeoutTimedOut those the timeout ended.
	MetricTimeoutCalls    = "seawall.timeout.calls"
	MetricTimeoutTimedOut = "seawall.timeout.timed_out"
	// MetricTimeoutAbandoned counts, in Abandon mode, the calls that
	// returned before their operation; MetricTimeoutRunning is the
	// operations still running (abandoned ones included).
	MetricTimeoutAbandoned = "seawall.timeout.abandoned"
	MetricTimeoutRunning   = "seawall.timeout.running"

	// MetricFallbackFellBack counts the calls a fallback answered another
	// way, and MetricFallbackFailed the fallbacks that failed too.
	MetricFallbackFellBack = "seawall.fallback.fell_back"
	MetricFallbackFailed   = "seawall.fallback.failed"

	// MetricHedgeCalls counts the calls through a hedge, MetricHedgeHedges
	// the attempts it started beyond the first (gRPC's
	// grpc.client.call.hedges, as a total), MetricHedgeWins the calls a
	// hedge won, MetricHedgeRefused the hedges not started, by
	// seawall.hedge.refused_by (budget, gate), and MetricHedgeDelay the
	// hedge delay now.
	MetricHedgeCalls   = "seawall.hedge.calls"
	MetricHedgeHedges  = "seawall.client.call.hedges"
	MetricHedgeWins    = "seawall.hedge.wins"
	MetricHedgeRefused = "seawall.hedge.refused"
	MetricHedgeDelay   = "seawall.hedge.delay"
)

// The attribute keys of the metrics. Every series carries AttrPolicy; the
// others take only the few values listed, never a user's key, a URL or an
// error's text, so that the number of series stays bounded.
const (
	// AttrPolicy is the name the policy is registered under.
	AttrPolicy attribute.Key = "seawall.policy"
	// AttrOutcome is a call's outcome: OutcomeSuccess, OutcomeFailure,
	// OutcomeIgnored or OutcomeRejected for a breaker, OutcomeAdmitted or
	// OutcomeRejected for a rate limiter.
	AttrOutcome attribute.Key = "seawall.outcome"
	// AttrBreakerState is a breaker's state: "closed", "open", "half-open",
	// "forced-open" or "disabled" (breaker.State's names).
	AttrBreakerState attribute.Key = "seawall.breaker.state"
	// AttrFromState and AttrToState are the states of a transition.
	AttrFromState attribute.Key = "seawall.breaker.from_state"
	AttrToState   attribute.Key = "seawall.breaker.to_state"
	// AttrRetryReason is why a call gave up: "not_retryable",
	// "attempts_exhausted", "stopped", "deadline", "budget_exhausted" or
	// "canceled" (retry.Reason's names).
	AttrRetryReason attribute.Key = "seawall.retry.reason"
	// AttrHedgeRefusedBy is what refused a hedge: budget or gate.
	AttrHedgeRefusedBy attribute.Key = "seawall.hedge.refused_by"
)

// The values of AttrOutcome.
const (
	OutcomeSuccess  = "success"
	OutcomeFailure  = "failure"
	OutcomeIgnored  = "ignored"
	OutcomeRejected = "rejected"
	OutcomeAdmitted = "admitted"
)

const (
	numStates  = len(breaker.StateCounts{})
	numReasons = len(retry.GaveUpBy{})
)

// The indexes of the outcomes in names.outcome.
const (
	iSuccess = iota
	iFailure
	iIgnored
	iRejected
	iAdmitted
	numOutcomes
)

func outcomeName(i int) string {
	switch i {
	case iSuccess:
		return OutcomeSuccess
	case iFailure:
		return OutcomeFailure
	case iIgnored:
		return OutcomeIgnored
	case iRejected:
		return OutcomeRejected
	}
	return OutcomeAdmitted
}

// Metrics reports the policies of a registry as OpenTelemetry metrics (see
// the Metric constants and the README's table).
//
// Policies keep their counters in atomics whatever reads them; Metrics adds
// nothing to their success paths. At each collection, one callback walks
// the registry and observes every policy's snapshot (its Metrics method)
// through asynchronous instruments, so a policy registered after NewMetrics
// is reported from the next collection on, and one unregistered is no
// longer reported. Only the histograms (waits in a queue, retries and
// their delays) are synchronous: they are fed from the registry's events
// ([registry.Registry.Watch]), which policies emit on their slow paths only.
//
// The attribute sets of each policy are built once, at its first
// collection, and forgotten at the first collection after it is
// unregistered, so a collection allocates nothing for the policies it has
// seen before.
//
// A Metrics is safe for concurrent use by multiple goroutines.
type Metrics struct {
	reg *registry.Registry
	in  instruments

	cb   metric.Registration
	stop func()

	mu    sync.Mutex // serializes collections; guards pass and the names' lazy fields
	pass  uint64     // collections begun
	cache atomic.Pointer[map[string]*names]

	closeOnce sync.Once
	closeErr  error
}

// names holds the measurement options of one policy name, built lazily at
// collection: the attribute sets it reports under.
type names struct {
	name string
	seen uint64 // the last pass that saw the name; guarded by Metrics.mu

	// Immutable, read by the event handler without the lock.
	record []metric.RecordOption // {AttrPolicy}

	// Built on first use, under Metrics.mu.
	base    []metric.ObserveOption // {AttrPolicy}
	state   [numStates][]metric.ObserveOption
	outcome [numOutcomes][]metric.ObserveOption
	reason  [numReasons][]metric.ObserveOption
	moves   *[numStates * numStates][]metric.ObserveOption
	refused map[string][]metric.ObserveOption // a hedge's, by what refused
}

func (n *names) refusedOpts(by string) []metric.ObserveOption {
	if n.refused[by] == nil {
		if n.refused == nil {
			n.refused = map[string][]metric.ObserveOption{}
		}
		n.refused[by] = n.with(AttrHedgeRefusedBy.String(by))
	}
	return n.refused[by]
}

func newNames(name string) *names {
	set := attribute.NewSet(AttrPolicy.String(name))
	opt := metric.WithAttributeSet(set)
	return &names{name: name, record: []metric.RecordOption{opt}, base: []metric.ObserveOption{opt}}
}

// with returns the options for the policy's attribute plus kvs.
func (n *names) with(kvs ...attribute.KeyValue) []metric.ObserveOption {
	set := attribute.NewSet(append([]attribute.KeyValue{AttrPolicy.String(n.name)}, kvs...)...)
	return []metric.ObserveOption{metric.WithAttributeSet(set)}
}

func (n *names) stateOpts(s breaker.State) []metric.ObserveOption {
	if n.state[s] == nil {
		n.state[s] = n.with(AttrBreakerState.String(s.String()))
	}
	return n.state[s]
}

func (n *names) outcomeOpts(i int) []metric.ObserveOption {
	if n.outcome[i] == nil {
		n.outcome[i] = n.with(AttrOutcome.String(outcomeName(i)))
	}
	return n.outcome[i]
}

func (n *names) reasonOpts(r int) []metric.ObserveOption {
	if n.reason[r] == nil {
		n.reason[r] = n.with(AttrRetryReason.String(retry.Reason(r).String()))
	}
	return n.reason[r]
}

func (n *names) moveOpts(from, to int) []metric.ObserveOption {
	if n.moves == nil {
		n.moves = new([numStates * numStates][]metric.ObserveOption)
	}
	p := &n.moves[from*numStates+to]
	if *p == nil {
		*p = n.with(AttrFromState.String(breaker.State(from).String()), AttrToState.String(breaker.State(to).String()))
	}
	return *p
}

// limiterInstruments are the instruments a bulkhead and an adaptive
// limiter share, under their own names.
type limiterInstruments struct {
	inFlight, waiting, limit metric.Int64ObservableUpDownCounter
	admitted, rejected       metric.Int64ObservableCounter
	wait                     metric.Float64Histogram
}

type instruments struct {
	brState     metric.Int64ObservableGauge
	brCalls     metric.Int64ObservableCounter
	brSlow      metric.Int64ObservableCounter
	brMoves     metric.Int64ObservableCounter
	brProbeIn   metric.Float64ObservableGauge
	grKeys      metric.Int64ObservableUpDownCounter
	grBreakers  metric.Int64ObservableUpDownCounter
	grEvictions metric.Int64ObservableCounter
	grCalls     metric.Int64ObservableUpDownCounter
	grSlow      metric.Int64ObservableUpDownCounter

	rtRetries  metric.Int64ObservableCounter
	rtGaveUp   metric.Int64ObservableCounter
	callRetry  metric.Int64Histogram
	callDelay  metric.Float64Histogram
	bgRequests metric.Int64ObservableCounter
	bgAllowed  metric.Int64ObservableCounter
	bgRefused  metric.Int64ObservableCounter
	bgTokens   metric.Float64ObservableGauge

	bh         limiterInstruments
	ad         limiterInstruments
	adBaseline metric.Float64ObservableGauge
	adSampled  metric.Float64ObservableGauge

	rlCalls metric.Int64ObservableCounter
	rlKeys  metric.Int64ObservableUpDownCounter
	rlFall  metric.Int64ObservableCounter
	rlErrs  metric.Int64ObservableCounter

	thProb      metric.Float64ObservableGauge
	thThrottled metric.Int64ObservableCounter
	thRefused   metric.Int64ObservableCounter

	ftEnabled metric.Int64ObservableGauge
	ftCalls   metric.Int64ObservableCounter
	ftDelays  metric.Int64ObservableCounter
	ftErrors  metric.Int64ObservableCounter

	toCalls, toTimedOut, toAbandoned metric.Int64ObservableCounter
	toRunning                        metric.Int64ObservableUpDownCounter

	fbFellBack, fbFailed metric.Int64ObservableCounter

	hgCalls, hgHedges, hgWins, hgRefused metric.Int64ObservableCounter
	hgDelay                              metric.Float64ObservableGauge
}

// builder creates instruments, collecting their errors and the observables
// the callback observes.
type builder struct {
	m   metric.Meter
	err error
	obs []metric.Observable
}

func (b *builder) fail(err error) {
	if err != nil {
		b.err = errors.Join(b.err, err)
	}
}

func (b *builder) counter(name, unit, desc string) metric.Int64ObservableCounter {
	i, err := b.m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.fail(err)
	b.obs = append(b.obs, i)
	return i
}

func (b *builder) upDown(name, unit, desc string) metric.Int64ObservableUpDownCounter {
	i, err := b.m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.fail(err)
	b.obs = append(b.obs, i)
	return i
}

func (b *builder) gauge(name, unit, desc string) metric.Int64ObservableGauge {
	i, err := b.m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.fail(err)
	b.obs = append(b.obs, i)
	return i
}

func (b *builder) floatGauge(name, unit, desc string) metric.Float64ObservableGauge {
	i, err := b.m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.fail(err)
	b.obs = append(b.obs, i)
	return i
}

func (b *builder) seconds(name, desc string) metric.Float64Histogram {
	i, err := b.m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	b.fail(err)
	return i
}

func (b *builder) limiter(prefix, what string) limiterInstruments {
	return limiterInstruments{
		inFlight: b.upDown(prefix+".in_flight", "{call}", "Calls holding a "+what+" slot."),
		waiting:  b.upDown(prefix+".waiting", "{call}", "Calls waiting in the "+what+" queue."),
		limit:    b.upDown(prefix+".limit", "{call}", "Calls that may hold a "+what+" slot at once."),
		admitted: b.counter(prefix+".admitted", "{call}", "Calls the "+what+" admitted."),
		rejected: b.counter(prefix+".rejected", "{call}", "Calls the "+what+" rejected."),
		wait:     b.seconds(prefix+".wait", "Time the calls admitted after waiting spent in the "+what+" queue."),
	}
}

// NewMetrics creates the instruments that report reg's policies, with a
// meter named [ScopeName] of the meter provider (see [WithMeterProvider]),
// registers one callback that observes every registered policy at each
// collection, and watches reg's events for the histograms. Call Close to
// stop.
func NewMetrics(reg *registry.Registry, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("otelseawall: NewMetrics with a nil registry")
	}
	cfg := newConfig(opts)
	b := &builder{m: cfg.meterProvider.Meter(ScopeName)}
	m := &Metrics{reg: reg}
	m.cache.Store(new(map[string]*names))
	in := &m.in

	in.brState = b.gauge(MetricBreakerState, "{state}", "The breaker's state, as attribute seawall.breaker.state: one series of value 1 per breaker.")
	in.brCalls = b.counter(MetricBreakerCalls, "{call}", "Calls through the breaker, by outcome.")
	in.brSlow = b.counter(MetricBreakerSlowCalls, "{call}", "Calls at or above the breaker's slow-call threshold.")
	in.brMoves = b.counter(MetricBreakerTransitions, "{transition}", "The breaker's state changes, by from and to state.")
	in.brProbeIn = b.floatGauge(MetricBreakerProbeIn, "s", "Time until an open breaker admits its next probe; 0 unless open.")
	in.grKeys = b.upDown(MetricGroupKeys, "{breaker}", "Breakers the group holds.")
	in.grBreakers = b.upDown(MetricGroupBreakers, "{breaker}", "The group's breakers, by state.")
	in.grEvictions = b.counter(MetricGroupEvictions, "{breaker}", "Keys the group forgot to make room.")
	in.grCalls = b.upDown(MetricGroupCalls, "{call}", "Calls through the breakers the group holds now, summed, by outcome; falls when the group forgets a key.")
	in.grSlow = b.upDown(MetricGroupSlowCalls, "{call}", "Slow calls through the breakers the group holds now, summed; falls when the group forgets a key.")

	in.rtRetries = b.counter(MetricRetryRetries, "{retry}", "Retries made (attempts after the first).")
	in.rtGaveUp = b.counter(MetricRetryGaveUp, "{call}", "Calls that ended in an error, by the reason retrying stopped.")
	var err error
	in.callRetry, err = b.m.Int64Histogram(MetricClientCallRetries, metric.WithUnit("{retry}"),
		metric.WithDescription("Retries of each call that retried."),
		metric.WithExplicitBucketBoundaries(1, 2, 3, 4, 5, 10))
	b.fail(err)
	in.callDelay = b.seconds(MetricClientCallRetryDelay, "Total time each call that retried waited between its attempts.")
	in.bgRequests = b.counter(MetricBudgetRequests, "{request}", "Requests (first attempts) the retry budget has seen.")
	in.bgAllowed = b.counter(MetricBudgetRetriesAllowed, "{retry}", "Retries the budget allowed.")
	in.bgRefused = b.counter(MetricBudgetExhausted, "{retry}", "Retries the budget refused.")
	in.bgTokens = b.floatGauge(MetricBudgetTokens, "{token}", "Tokens in a tokens-mode retry budget.")

	in.bh = b.limiter("seawall.bulkhead", "bulkhead")
	in.ad = b.limiter("seawall.adaptive", "adaptive limiter")
	in.adBaseline = b.floatGauge(MetricAdaptiveLatencyBaseline, "s", "The latency the adaptive limiter takes for the dependency's own.")
	in.adSampled = b.floatGauge(MetricAdaptiveLatencySampled, "s", "The latency of the adaptive limiter's last window.")

	in.rlCalls = b.counter(MetricRateLimitCalls, "{call}", "Calls through the rate limiter, by outcome.")
	in.rlKeys = b.upDown(MetricRateLimitKeys, "{key}", "Keys the keyed rate limiter remembers.")
	in.rlFall = b.counter(MetricRateLimitFallbackCalls, "{call}", "Calls the shared rate limiter decided without its store, by outcome.")
	in.rlErrs = b.counter(MetricRateLimitStoreErrors, "{error}", "Calls of the shared rate limiter to its store that failed.")

	in.thProb = b.floatGauge(MetricThrottleProbability, "1", "The throttle's rejection probability.")
	in.thThrottled = b.counter(MetricThrottleThrottled, "{call}", "Requests the throttle rejected locally.")
	in.thRefused = b.counter(MetricThrottleRefused, "{call}", "Requests the backend refused.")

	in.ftEnabled = b.gauge(MetricFaultEnabled, "1", "Whether the fault injector is on (1) or off (0).")
	in.ftCalls = b.counter(MetricFaultCalls, "{call}", "Calls the fault injector saw while on.")
	in.ftDelays = b.counter(MetricFaultDelays, "{delay}", "Delays the fault injector injected.")
	in.ftErrors = b.counter(MetricFaultErrors, "{error}", "Errors the fault injector injected.")

	in.toCalls = b.counter(MetricTimeoutCalls, "{call}", "Calls through the timeout.")
	in.toTimedOut = b.counter(MetricTimeoutTimedOut, "{call}", "Calls the timeout ended.")
	in.toAbandoned = b.counter(MetricTimeoutAbandoned, "{call}", "Calls that returned before their operation (Abandon mode).")
	in.toRunning = b.upDown(MetricTimeoutRunning, "{call}", "Operations still running, abandoned ones included (Abandon mode).")

	in.fbFellBack = b.counter(MetricFallbackFellBack, "{call}", "Calls the fallback answered another way.")
	in.fbFailed = b.counter(MetricFallbackFailed, "{call}", "Fallbacks that failed too.")

	in.hgCalls = b.counter(MetricHedgeCalls, "{call}", "Calls through the hedge.")
	in.hgHedges = b.counter(MetricHedgeHedges, "{attempt}", "Attempts the hedge started beyond the first.")
	in.hgWins = b.counter(MetricHedgeWins, "{call}", "Calls a hedge won.")
	in.hgRefused = b.counter(MetricHedgeRefused, "{attempt}", "Hedges not started, by what refused them.")
	in.hgDelay = b.floatGauge(MetricHedgeDelay, "s", "The hedge delay now.")

	if b.err != nil {
		return nil, errors.Join(errors.New("otelseawall: creating instruments"), b.err)
	}
	cb, err := b.m.RegisterCallback(m.collect, b.obs...)
	if err != nil {
		return nil, errors.Join(errors.New("otelseawall: registering the callback"), err)
	}
	m.cb = cb
	m.stop = reg.Watch(m.event)
	return m, nil
}

// Close stops reporting: it unregisters the callback and stops watching the
// registry's events. Later calls return the first call's result.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		m.stop()
		if err := m.cb.Unregister(); err != nil {
			m.closeErr = errors.Join(errors.New("otelseawall: unregistering the callback"), err)
		}
	})
	return m.closeErr
}

// event records the registry's slow-path events in the histograms.
func (m *Metrics) event(ev registry.Event) {
	var h metric.Float64Histogram
	switch {
	case ev.Type == registry.CallRetried && ev.Retries > 0:
	case ev.Type == registry.Waited && ev.Kind == registry.KindBulkhead:
		h = m.in.bh.wait
	case ev.Type == registry.Waited && ev.Kind == registry.KindAdaptive:
		h = m.in.ad.wait
	default:
		return
	}
	var opts []metric.RecordOption
	if n := (*m.cache.Load())[ev.Policy]; n != nil {
		opts = n.record
	} else { // not collected yet
		opts = newNames(ev.Policy).record
	}
	ctx := context.Background()
	if h != nil {
		h.Record(ctx, ev.Duration.Seconds(), opts...)
		return
	}
	m.in.callRetry.Record(ctx, int64(ev.Retries), opts...)
	m.in.callDelay.Record(ctx, ev.Duration.Seconds(), opts...)
}

// collect is the callback: it observes every registered policy.
func (m *Metrics) collect(_ context.Context, o metric.Observer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pass++
	pass := m.pass
	cur := *m.cache.Load()
	var added map[string]*names
	kept := 0
	m.reg.Range(func(p registry.Policy) bool {
		n := cur[p.Name]
		switch {
		case n != nil:
			if n.seen != pass {
				kept++
			}
		case added[p.Name] != nil:
			n = added[p.Name]
		default:
			n = newNames(p.Name)
			if added == nil {
				added = make(map[string]*names)
			}
			added[p.Name] = n
		}
		n.seen = pass
		m.observe(o, p.Value, n)
		return true
	})
	if len(added) > 0 || kept != len(cur) {
		next := make(map[string]*names, kept+len(added))
		for k, n := range cur {
			if n.seen == pass {
				next[k] = n
			}
		}
		maps.Copy(next, added)
		m.cache.Store(&next)
	}
	return nil
}

// count converts a counter for an Int64 instrument.
func count(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

func (m *Metrics) observe(o metric.Observer, v any, n *names) {
	in := &m.in
	switch v := v.(type) {
	case *breaker.Breaker:
		bm := v.Metrics()
		if int(bm.State) < numStates {
			o.ObserveInt64(in.brState, 1, n.stateOpts(bm.State)...)
		}
		m.calls(o, in.brCalls, n, &bm)
		o.ObserveInt64(in.brSlow, count(bm.SlowCalls), n.base...)
		for from := range numStates {
			for to, c := range bm.Moves[from] {
				if c > 0 {
					o.ObserveInt64(in.brMoves, count(c), n.moveOpts(from, to)...)
				}
			}
		}
		o.ObserveFloat64(in.brProbeIn, bm.ProbeIn.Seconds(), n.base...)
	case *breaker.Group:
		gm := v.Metrics()
		o.ObserveInt64(in.grKeys, int64(gm.Keys), n.base...)
		for s, c := range gm.States {
			o.ObserveInt64(in.grBreakers, int64(c), n.stateOpts(breaker.State(s))...)
		}
		o.ObserveInt64(in.grEvictions, count(gm.Evictions), n.base...)
		m.calls(o, in.grCalls, n, &gm.Total)
		o.ObserveInt64(in.grSlow, count(gm.Total.SlowCalls), n.base...)
	case *retry.Retry:
		rm := v.Metrics()
		o.ObserveInt64(in.rtRetries, count(rm.Retries), n.base...)
		for r, c := range rm.GaveUpBy {
			o.ObserveInt64(in.rtGaveUp, count(c), n.reasonOpts(r)...)
		}
	case *retry.Budget:
		bm := v.Metrics()
		o.ObserveInt64(in.bgRequests, count(bm.Requests), n.base...)
		o.ObserveInt64(in.bgAllowed, count(bm.Retries), n.base...)
		o.ObserveInt64(in.bgRefused, count(bm.Exhausted), n.base...)
		if v.Mode() == retry.TokensMode {
			o.ObserveFloat64(in.bgTokens, bm.Tokens, n.base...)
		}
	case *bulkhead.Bulkhead:
		bm := v.Metrics()
		limiter(o, &in.bh, n, bm.InFlight, bm.Waiting, bm.Limit, bm.Admitted, bm.Rejected)
	case *adaptive.Limiter:
		am := v.Metrics()
		limiter(o, &in.ad, n, am.InFlight, am.Waiting, am.Limit, am.Admitted, am.Rejected)
		if am.Baseline > 0 {
			o.ObserveFloat64(in.adBaseline, am.Baseline.Seconds(), n.base...)
		}
		if am.Sampled > 0 {
			o.ObserveFloat64(in.adSampled, am.Sampled.Seconds(), n.base...)
		}
	case *ratelimit.Limiter:
		rm := v.Metrics()
		o.ObserveInt64(in.rlCalls, count(rm.Allowed), n.outcomeOpts(iAdmitted)...)
		o.ObserveInt64(in.rlCalls, count(rm.Limited), n.outcomeOpts(iRejected)...)
	case *ratelimit.Keyed:
		rm := v.Metrics()
		o.ObserveInt64(in.rlCalls, count(rm.Allowed), n.outcomeOpts(iAdmitted)...)
		o.ObserveInt64(in.rlCalls, count(rm.Limited), n.outcomeOpts(iRejected)...)
		o.ObserveInt64(in.rlKeys, int64(v.Len()), n.base...)
	case registry.SharedLimiter:
		rm := v.SharedLimitMetrics()
		o.ObserveInt64(in.rlCalls, count(rm.Allowed), n.outcomeOpts(iAdmitted)...)
		o.ObserveInt64(in.rlCalls, count(rm.Limited), n.outcomeOpts(iRejected)...)
		if sh := rm.Shared; sh != nil {
			o.ObserveInt64(in.rlFall, count(sh.FallbackAllowed), n.outcomeOpts(iAdmitted)...)
			o.ObserveInt64(in.rlFall, count(sh.FallbackLimited), n.outcomeOpts(iRejected)...)
			o.ObserveInt64(in.rlErrs, count(sh.Errors), n.base...)
		}
	case *throttle.Throttle:
		tm := v.Metrics()
		o.ObserveFloat64(in.thProb, tm.Probability, n.base...)
		o.ObserveInt64(in.thThrottled, count(tm.Throttled), n.base...)
		o.ObserveInt64(in.thRefused, count(tm.Refused), n.base...)
	case *fault.Injector:
		fm := v.Metrics()
		on := int64(0)
		if fm.Enabled {
			on = 1
		}
		o.ObserveInt64(in.ftEnabled, on, n.base...)
		o.ObserveInt64(in.ftCalls, count(fm.Calls), n.base...)
		o.ObserveInt64(in.ftDelays, count(fm.Delays), n.base...)
		o.ObserveInt64(in.ftErrors, count(fm.Errors), n.base...)
	case *timeout.Timeout:
		tm := v.Metrics()
		o.ObserveInt64(in.toCalls, count(tm.Calls), n.base...)
		o.ObserveInt64(in.toTimedOut, count(tm.TimedOut), n.base...)
		o.ObserveInt64(in.toAbandoned, count(tm.Abandoned), n.base...)
		o.ObserveInt64(in.toRunning, tm.Running, n.base...)
	case *hedge.Hedge:
		hm := v.Metrics()
		o.ObserveInt64(in.hgCalls, count(hm.Calls), n.base...)
		o.ObserveInt64(in.hgHedges, count(hm.Hedges), n.base...)
		o.ObserveInt64(in.hgWins, count(hm.HedgeWins), n.base...)
		o.ObserveInt64(in.hgRefused, count(hm.BudgetRefusals), n.refusedOpts("budget")...)
		o.ObserveInt64(in.hgRefused, count(hm.GateRefusals), n.refusedOpts("gate")...)
		o.ObserveFloat64(in.hgDelay, hm.Delay.Seconds(), n.base...)
	case fallback.Metered:
		fm := v.Metrics()
		o.ObserveInt64(in.fbFellBack, count(fm.FellBack), n.base...)
		o.ObserveInt64(in.fbFailed, count(fm.Failed), n.base...)
	}
}

// calls observes a breaker's (or a group's summed) calls by outcome.
func (m *Metrics) calls(o metric.Observer, i metric.Int64Observable, n *names, bm *breaker.Metrics) {
	o.ObserveInt64(i, count(bm.Successes), n.outcomeOpts(iSuccess)...)
	o.ObserveInt64(i, count(bm.Failures), n.outcomeOpts(iFailure)...)
	o.ObserveInt64(i, count(bm.Ignored), n.outcomeOpts(iIgnored)...)
	o.ObserveInt64(i, count(bm.Rejections), n.outcomeOpts(iRejected)...)
}

func limiter(o metric.Observer, in *limiterInstruments, n *names, inFlight, waiting, limit int, admitted, rejected uint64) {
	o.ObserveInt64(in.inFlight, int64(inFlight), n.base...)
	o.ObserveInt64(in.waiting, int64(waiting), n.base...)
	o.ObserveInt64(in.limit, int64(limit), n.base...)
	o.ObserveInt64(in.admitted, count(admitted), n.base...)
	o.ObserveInt64(in.rejected, count(rejected), n.base...)
}
