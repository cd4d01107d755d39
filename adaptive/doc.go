// Package adaptive provides an adaptive concurrency limit: a limit on the
// calls in flight to a dependency that finds the dependency's capacity from
// the latencies it observes, and sheds the calls beyond it, so that no
// fixed number has to be tuned, nor re-tuned the day the dependency
// changes.
//
// A [Limiter] runs calls in the slots of a bulkhead (package bulkhead),
// whose limit it moves once per window. Admitting a call and recording its
// latency take no lock and allocate nothing: one compare-and-swap and one
// clock read to admit, and one clock read and two atomic adds to record
// (the slot, and a counter of a lock-free latency histogram). The
// [Permit.Done] that ends a window moves the limit, under a mutex only
// that caller takes.
//
// # The algorithm
//
// A dependency of W workers serves W calls at once; more calls queue, and
// by Little's law a window's mean latency R with L calls in flight is the
// dependency's own latency B (the baseline) times L/W. The default,
// [Gradient], moves the limit to
//
//	limit × min(1, max(0.5, B/R)) + sqrt(limit)
//
// (smoothed), which with R = B·L/W is W + sqrt(limit): the capacity, plus
// a small queue (the headroom) so that no worker waits for its next call.
// With W = 10 the limit settles at 13.7; with W = 100, at 111. Netflix's
// concurrency-limits (Gradient2, Vegas), Envoy's adaptive concurrency
// filter and failsafe-go's adaptivelimiter are of this family. [AIMD] is
// the simpler rule: add 1 while the latency is under a threshold relative
// to the baseline and nothing fails, multiply by Backoff otherwise.
//
// A window lasts at least Window, until it holds MinSamples latencies, and
// at least twice its last latency (so that a change of the limit shows in
// the latencies before the next one). By default its latency is the mean
// of its samples, the statistic for which Little's law holds; Percentile
// chooses a quantile instead.
//
// # The baseline
//
// Everything rests on B, and B is what goes wrong in two known ways:
//
//   - Drift. A baseline that follows the latencies (a long-term average, a
//     minimum that ages out) climbs toward them during a long incident;
//     B/R goes to 1 and the limit stops falling, or rises, while the
//     dependency is still overloaded (failsafe-go issue 127).
//   - Collapse. When the dependency gets slower at every concurrency (the
//     same workers, each call taking 2× longer), that is not queueing, but
//     a limiter that keeps the old baseline reads it as queueing, halves
//     its limit and leaves half the workers idle.
//
// Here the baseline is measured, never followed: the limiter drops its
// limit for a moment to a concurrency at which the dependency has no queue,
// and takes the mean latency of the next ProbeSamples calls it admits (at
// least a window's worth), waiting for the slow ones among them to end
// (Envoy's minRTT measurement, at a concurrency that scales with the
// service). That concurrency is half the adaptive limit (below the
// capacity once the limit has settled, for the limit less its headroom
// is the capacity), but no more than the calls the last window served
// without queueing, its throughput × the baseline (by Little's law at most
// the capacity, even in the middle of a fall). A measurement whose mean is
// clearly off the baseline (3 standard errors, after MinSamples) ends
// early, so that a slower dependency is known soon.
//
// The limiter measures when it starts, every ProbeInterval (10s), when the
// limit has fallen by a third in one run of falling windows (a slower or a
// smaller dependency: only a fresh baseline tells which), and when a
// window's latency is under half the baseline (a faster one). Between
// measurements the baseline does not move. One measurement may lower it at
// will, but may raise it by at most MaxBaselineRise (2×): a measurement
// taken while the dependency is overloaded anyway (by other clients, say)
// cannot carry the baseline, and the limit, up without bound in one step;
// a dependency that really got 10× slower is followed in four. A
// measurement within 25% of the baseline is averaged with it, so that its
// noise shrinks from one to the next.
//
// A measurement costs throughput: for its length, about ProbeSamples
// latencies ÷ half the limit (100ms at 1000 calls/s), half the slots are
// idle. At the defaults that is under 1% of the capacity.
//
// # The queue
//
// A call over the limit waits for a slot, first in first out, at most
// half the time its context has left (MaxWait, by default), in a queue of
// up to MaxLimit calls (MaxWaiting); a call whose context has no deadline
// does not wait. A burst shorter than the callers' timeouts is then served
// late rather than refused and retried (in the retry-storm demo, a spike
// of 250ms above capacity is absorbed whole, where refusing it made 1.4×
// as many attempts); and a call that waited still has half its time to
// run, so the queue does not fill with calls that will time out, as a
// queue bounded only by the deadline does in a sustained overload. The
// cost is latency in a sustained overload: the calls served have waited
// up to half their deadline. NoQueue refuses at once instead.
//
// # Outcomes
//
// [Permit.Done] takes the call's error: a success's latency is a sample; a
// call whose context was canceled records nothing (its caller went away);
// a timeout's latency is a sample, and a drop; any other error is a drop
// and not a sample (a fast failure would make an overloaded dependency
// look fast). Drops make AIMD back off; Gradient goes by latency.
//
// A refused call gets an error matching [ErrLimited] and
// seawall.ErrRejected, with a retry-after hint (the latency last sampled),
// so that seawall.IsOverload reports it as shedding, not failure.
//
// # Middleware
//
// httpmw.WithAdaptiveLimit and grpcmw.WithAdaptiveLimit put a Limiter in
// front of a server's handlers, in place of a fixed bulkhead.
package adaptive
