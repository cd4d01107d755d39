package adaptive

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/internal/obs"
)

// ErrLimited is the sentinel of a call the [Limiter] refused: the limit was
// reached and the queue was full or absent, or the call waited MaxWait. It
// matches seawall.ErrRejected with errors.Is. The error [Limiter.Acquire]
// and [Limiter.Do] return wraps it with a retry-after hint (see
// [Limiter.Acquire]), so that seawall.IsOverload reports it as shedding,
// not failure.
var ErrLimited = seawall.NewRejection("adaptive: limited")

// errPanicked is what Do records for an operation that panicked: a drop.
var errPanicked = errors.New("adaptive: operation panicked")

// A Limiter is a concurrency limit that finds a dependency's capacity from
// the latencies it observes, and sheds the calls beyond it. It runs calls
// in the slots of a [bulkhead.Bulkhead] whose limit it moves once per
// window, by its [Algorithm], comparing the window's latency with a
// baseline that it re-measures at low concurrency (see the package
// documentation for the algorithm and why).
//
// There are two ways to use it. The primitive: [Limiter.Acquire] or
// [Limiter.TryAcquire] returns a [Permit], and [Permit.Done] gives it back
// with the call's outcome; admitting and recording take no lock and
// allocate nothing, and read the clock once each. The convenience:
// [Limiter.Do] runs a function under a permit, satisfying seawall.Policy.
//
// The zero Config is valid (see [Config]). A Limiter starts no goroutine:
// the limit moves in the [Permit.Done] call that ends a window. A Limiter
// is safe for concurrent use by multiple goroutines.
type Limiter struct {
	bh    *bulkhead.Bulkhead
	epoch time.Time // the clock is read as nanoseconds since epoch

	// Read by every Done, written once per window: windowEnd is when the
	// limit may next move; a sample of a call admitted before recordAfter
	// or from recordBefore on is not recorded (it ran under another limit
	// than the one measured: before a probe began or ended, or after the
	// probe stopped counting admissions). The padding keeps the histogram, written by every Done,
	// off their cache line.
	windowEnd    atomic.Int64
	recordAfter  atomic.Int64
	recordBefore atomic.Int64
	_            [40]byte

	hist  histogram
	drops atomic.Uint64 // calls that ended in an error or a timeout, this window

	rejection atomic.Pointer[error] // ErrLimited with the current hint

	cfg Config

	mu sync.Mutex // the updater; guards st and scratch
	st struct {
		limit      float64 // the adaptive limit (the bulkhead's, unless probing)
		baseline   float64 // ns; 0 until first measured
		sampled    float64 // the last window's statistic, ns
		probing    bool
		probeStart int64
		probeLimit int
		probeCut   int64 // when the probe stopped counting admissions; 0 before
		nextProbe  int64
		runStart   float64 // the limit when the current run of falls began; 0 if none
		rejected   uint64  // the bulkhead's rejections at the last update
		probes     uint64  // measurements of the baseline completed
		windows    uint64  // windows that ended in an update of the limit
		winStart   int64   // when the current window began
		served     float64 // the last window's throughput × baseline: calls served without queueing; 0 if unknown
	}
	scratch [nBuckets]uint64
}

// New returns a limiter configured by cfg, or an error naming the first
// invalid field of cfg.
func New(cfg Config) (*Limiter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	bh, err := bulkhead.New(bulkhead.Config{
		MaxConcurrent: cfg.InitialLimit,
		MaxWaiting:    cfg.MaxWaiting, // 0 with NoQueue
		MaxWait:       cfg.MaxWait,
	})
	if err != nil {
		return nil, err // unreachable: the bounds above are the bulkhead's
	}
	l := &Limiter{bh: bh, epoch: time.Now(), cfg: cfg}
	l.recordBefore.Store(math.MaxInt64)
	l.st.limit = float64(cfg.InitialLimit)
	l.setHint(0)
	// The first baseline is measured at once, at low concurrency.
	l.startProbe(0)
	return l, nil
}

// now returns the time since l.epoch: a monotonic reading, cheaper than
// time.Now.
func (l *Limiter) now() int64 { return int64(time.Since(l.epoch)) }

// A Permit is a slot of a [Limiter], from [Limiter.Acquire] or
// [Limiter.TryAcquire]. It is a small value: copy it freely, but call Done
// exactly once.
type Permit struct {
	l     *Limiter
	start int64
}

// Acquire takes a slot, waiting in the queue (if MaxWaiting allows) when
// the limit is reached. A caller that gets a permit (a nil error) must give
// it back with exactly one call of [Permit.Done].
//
// A refused call gets an error that matches [ErrLimited] and
// seawall.ErrRejected and carries a retry-after hint: the latency the
// limiter last sampled (at least 1ms), the time in which the calls in
// flight turn over, so that a slot will have come free once. It is a hint
// for spreading out retries, not a promise. If ctx ends first, Acquire
// returns ctx.Err() unchanged.
func (l *Limiter) Acquire(ctx context.Context) (Permit, error) {
	if done := ctx.Done(); done != nil {
		select {
		case <-done:
			return Permit{}, ctx.Err()
		default:
		}
	}
	if l.bh.TryAcquire() {
		return Permit{l: l, start: l.now()}, nil
	}
	return l.wait(ctx)
}

// wait is Acquire when no slot is free: it queues the call for at most
// MaxWait or, by default, half the time its context has left.
func (l *Limiter) wait(ctx context.Context) (Permit, error) {
	wctx := ctx
	if l.cfg.MaxWait == 0 && !l.cfg.NoQueue {
		deadline, ok := ctx.Deadline()
		if !ok {
			if err := ctx.Err(); err != nil {
				return Permit{}, err
			}
			return Permit{}, *l.rejection.Load() // no deadline: no wait
		}
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/2))
		defer cancel()
	}
	if err := l.bh.Acquire(wctx); err != nil {
		if err == bulkhead.ErrFull || wctx != ctx && ctx.Err() == nil {
			return Permit{}, *l.rejection.Load()
		}
		return Permit{}, err
	}
	return Permit{l: l, start: l.now()}, nil
}

// TryAcquire takes a slot if one is free and no call waits, without
// waiting. A caller that gets one (true) must give it back with exactly one
// call of [Permit.Done].
func (l *Limiter) TryAcquire() (Permit, bool) {
	if !l.bh.TryAcquire() {
		return Permit{}, false
	}
	return Permit{l: l, start: l.now()}, true
}

// Done gives the permit's slot back and records the call's outcome err:
//
//   - nil: the call's latency is a sample of the window;
//   - an error matching context.Canceled: nothing is recorded (the caller
//     went away; the latency says nothing of the dependency);
//   - an error matching context.DeadlineExceeded: the latency (a lower
//     bound of the real one) is a sample, and the call is a drop;
//   - any other error: the call is a drop, and its latency is not a
//     sample (a fast failure would make an overloaded dependency look
//     fast).
//
// Drops make AIMD back off; Gradient goes by latency alone. Done on the
// zero Permit does nothing; calling Done twice on a permit is a
// programming error that frees a slot someone else holds.
func (p Permit) Done(err error) {
	l := p.l
	if l == nil {
		return
	}
	now := l.now()
	l.bh.Release()
	if p.start >= l.recordAfter.Load() && p.start < l.recordBefore.Load() {
		switch {
		case err == nil:
			l.hist.add(now - p.start)
		case errors.Is(err, context.Canceled):
		case errors.Is(err, context.DeadlineExceeded):
			l.hist.add(now - p.start)
			l.drops.Add(1)
		default:
			l.drops.Add(1)
		}
	}
	if now >= l.windowEnd.Load() {
		l.update(now)
	}
}

// Do runs op under a permit: it acquires one as [Limiter.Acquire] does,
// and returns Acquire's error without running op if it cannot; otherwise it
// runs op(ctx), records its outcome with [Permit.Done] and returns op's
// error unchanged. If op panics, the permit is given back (as a drop)
// before the panic continues.
func (l *Limiter) Do(ctx context.Context, op func(context.Context) error) error {
	p, err := l.Acquire(ctx)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			p.Done(errPanicked)
		}
	}()
	err = op(ctx)
	done = true
	p.Done(err)
	return err
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy, so that a pipeline through
// the limiter allocates nothing.
func (l *Limiter) DoChain(ctx context.Context, c seawall.Chain) error {
	p, err := l.Acquire(ctx)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			p.Done(errPanicked)
		}
	}()
	err = c.Run(ctx)
	done = true
	p.Done(err)
	return err
}

// Limit returns the number of calls that may be in flight now: the
// adaptive limit, or, while the baseline is being measured, the lower
// limit of the measurement.
func (l *Limiter) Limit() int { return l.bh.Limit() }

// update moves the limit if the window has ended. Only one caller at a time
// does the work; the others go on.
func (l *Limiter) update(now int64) {
	if !l.mu.TryLock() {
		return
	}
	prev := int(math.Round(l.st.limit))
	l.updateLocked(now)
	next := int(math.Round(l.st.limit))
	l.mu.Unlock()
	if next != prev {
		obs.Emit(l.bh.Registration(), obs.Event{Type: obs.LimitChanged, Prev: prev, Count: next})
	}
}

// updateLocked is update's work. l.mu must be held.
func (l *Limiter) updateLocked(now int64) {
	if now < l.windowEnd.Load() {
		return // another caller updated since
	}
	cfg, st := &l.cfg, &l.st
	window := int64(cfg.Window)
	if st.probing {
		l.probe(now)
		return
	}
	if now >= st.nextProbe {
		l.startProbe(now)
		return
	}
	if l.hist.count() < uint64(cfg.MinSamples) {
		l.windowEnd.Store(now + window/4) // look again soon
		return
	}
	n := l.hist.drain(&l.scratch)
	r := statistic(&l.scratch, n, cfg.Percentile)
	drops := l.drops.Swap(0)
	st.sampled = r
	b := st.baseline
	if b == 0 {
		b = r // no measurement yet (too few calls came to the first)
		st.baseline = b
	}
	if span := now - st.winStart; span > 0 && st.winStart > 0 {
		st.served = float64(n) / float64(span) * b
	}
	st.winStart = now
	if r < b/2 {
		// Far faster than the baseline, beyond the noise of a window: the
		// dependency got faster. Measure it anew.
		l.setHint(r)
		l.startProbe(now)
		return
	}

	m := l.bh.Metrics()
	// The limit grows only when it is what holds calls back: calls were
	// rejected, or at least half the slots are busy.
	demand := m.Rejected != st.rejected || float64(m.InFlight)*2 >= st.limit
	st.rejected = m.Rejected

	old := st.limit
	var next float64
	if cfg.Algorithm == AIMD {
		switch {
		case drops > 0 || r > b*cfg.LatencyThreshold:
			next = old * cfg.Backoff
		case demand:
			next = old + 1
		default:
			next = old
		}
	} else {
		g := min(max(b/r, 0.5), 1)
		next = old*g + math.Sqrt(old)
		next = old + (next-old)*cfg.Smoothing
		if next > old && !demand {
			next = old
		}
	}
	next = min(max(next, float64(cfg.MinLimit)), float64(cfg.MaxLimit))
	st.limit = next
	st.windows++
	l.setHint(r)

	if next < old {
		if st.runStart == 0 {
			st.runStart = old
		}
		if next < st.runStart*2/3 {
			// A fall this steep is a slower dependency or a smaller one;
			// only a fresh baseline tells which.
			l.startProbe(now)
			return
		}
	} else {
		st.runStart = 0
	}
	l.setLimit(next)
	l.windowEnd.Store(now + max(window, 2*int64(r)))
}

// clearlyMoved reports whether the n samples of a measurement, at least
// MinSamples, already say that the baseline has moved: their mean is more
// than 3 standard errors from it. A measurement that says so ends early
// (a slower dependency is best known soon); one that does not collects all
// its ProbeSamples, for precision. l.mu must be held.
func (l *Limiter) clearlyMoved(n uint64) bool {
	b := l.st.baseline
	if b == 0 || n < uint64(l.cfg.MinSamples) {
		return false
	}
	c := l.peek()
	mean := statistic(c, n, 0)
	var ss float64
	for i, v := range c {
		if v != 0 {
			d := midpoint(i) - mean
			ss += float64(v) * d * d
		}
	}
	se := math.Sqrt(ss/float64(n)) / math.Sqrt(float64(n))
	return math.Abs(mean-b) > 3*se
}

// peek copies the histogram's counts into l.scratch without draining it.
// l.mu must be held.
func (l *Limiter) peek() *[nBuckets]uint64 {
	for i := range l.hist.n {
		l.scratch[i] = l.hist.n[i].Load()
	}
	return &l.scratch
}

// setLimit sets the bulkhead's limit to lim, rounded. l.mu must be held.
func (l *Limiter) setLimit(lim float64) {
	n := int(math.Round(lim))
	if n != l.bh.Limit() {
		_ = l.bh.SetLimit(n) // in range: lim is within [MinLimit, MaxLimit]
	}
}

// setHint makes the error of refused calls carry r nanoseconds, at least
// 1ms, as its retry-after hint. It allocates once per window, not once per
// refusal.
func (l *Limiter) setHint(r float64) {
	d := max(time.Duration(r), time.Millisecond).Round(time.Millisecond)
	err := seawall.WithRetryAfter(ErrLimited, d)
	l.rejection.Store(&err)
}

// startProbe begins a measurement of the baseline: the bulkhead's limit
// drops to a concurrency below the capacity (see below), and the latencies
// of the calls admitted from now on, at that concurrency, make the
// measurement. l.mu must be held (or l not yet shared).
func (l *Limiter) startProbe(now int64) {
	st := &l.st
	st.probing = true
	st.probeStart = now
	st.probeCut = 0
	// Half the limit, which is below the capacity when the limit has
	// settled (the limit less its headroom is the capacity); but no more
	// than the calls the last window served without queueing (its
	// throughput × the baseline, by Little's law), which is at most the
	// capacity even in the middle of a fall, when half the limit may not
	// be: a probe above the capacity would read queueing as the baseline.
	p := int(math.Ceil(st.limit / 2))
	if st.served > 0 {
		p = min(p, int(math.Round(st.served)))
	}
	st.probeLimit = max(l.cfg.MinLimit, p)
	st.runStart = 0
	l.recordAfter.Store(now)
	l.hist.drain(&l.scratch)
	l.drops.Store(0)
	_ = l.bh.SetLimit(st.probeLimit)
	l.windowEnd.Store(now + int64(l.cfg.Window))
}

// probe ends the measurement of the baseline, in two steps. Once it holds
// ProbeSamples samples and has lasted a window, or holds MinSamples that
// already differ clearly from the baseline, it stops counting the calls
// admitted from then on (the cut), and waits for the calls admitted before
// the cut to end: four times their mean latency so far, which leaves out
// about 2% of them if latencies are exponential. Ending at once would
// leave out the slow calls still in flight and read the baseline low (by
// about latency ÷ duration of the measurement, 10% at the defaults). A
// measurement that has not got its samples after a while gives up. l.mu
// must be held.
func (l *Limiter) probe(now int64) {
	cfg, st := &l.cfg, &l.st
	window := int64(cfg.Window)
	elapsed := now - st.probeStart
	n := l.hist.count()
	// The timeout scales with the latest latency, not only the baseline: after
	// the dependency got 10× slower, a measurement at a concurrency of 1
	// needs 20 of the new latencies to have MinSamples.
	timeout := max(10*window, 20*int64(max(st.baseline, st.sampled)))
	if st.probeCut == 0 {
		if n < uint64(cfg.ProbeSamples) && elapsed < timeout && !l.clearlyMoved(n) {
			l.windowEnd.Store(now + window/4)
			return
		}
		if n >= uint64(min(cfg.MinSamples, cfg.ProbeSamples)) {
			st.probeCut = now
			l.recordBefore.Store(now)
			mean := statistic(l.peek(), n, 0)
			l.windowEnd.Store(now + max(4*int64(mean), 1))
			return
		}
	}
	if st.probeCut != 0 {
		n = l.hist.drain(&l.scratch)
		r := statistic(&l.scratch, n, cfg.Percentile)
		switch b := st.baseline; {
		case b == 0:
			st.baseline = r
		case r > b*0.8 && r < b*1.25:
			// Within the noise of a measurement: average, so that the
			// baseline's error shrinks from one measurement to the next.
			st.baseline = (b + r) / 2
		default:
			// The one place the baseline rises, and by at most
			// MaxBaselineRise: see the package documentation.
			st.baseline = min(r, b*cfg.MaxBaselineRise)
		}
		st.sampled = r
		st.probes++
	}
	// Otherwise too few calls came to measure anything: keep the old
	// baseline, and try again after ProbeInterval.
	st.probing = false
	l.recordAfter.Store(now) // the next window counts calls admitted under the restored limit
	l.recordBefore.Store(math.MaxInt64)
	l.hist.drain(&l.scratch)
	l.drops.Store(0)
	st.nextProbe = now + int64(cfg.ProbeInterval)
	st.winStart = now
	st.served = 0
	st.rejected = l.bh.Metrics().Rejected
	l.setLimit(st.limit)
	l.windowEnd.Store(now + window)
}

// Metrics is a snapshot of a limiter's state and of its counters since it
// was created.
type Metrics struct {
	// Limit is the number of calls that may be in flight now (see
	// [Limiter.Limit]).
	Limit int `json:"limit"`
	// Estimate is the adaptive limit, unrounded; it differs from Limit
	// while the baseline is being measured.
	Estimate float64 `json:"estimate"`
	InFlight int     `json:"inFlight"` // calls holding a permit
	Waiting  int     `json:"waiting"`  // calls waiting in the queue
	Admitted uint64  `json:"admitted"` // permits given
	Rejected uint64  `json:"rejected"` // TryAcquire calls that got no permit, and calls refused with ErrLimited
	// WaitTime is the total time admitted calls spent in the queue (in
	// JSON, integer nanoseconds).
	WaitTime time.Duration `json:"waitTime"`
	// Baseline is the latency the limiter takes for the dependency's own,
	// without queueing; 0 until first measured. Sampled is the last
	// window's latency (its mean, or its Percentile). In JSON, integer
	// nanoseconds.
	Baseline time.Duration `json:"baseline"`
	Sampled  time.Duration `json:"sampled"`
	// Probing is whether the baseline is being measured now; Probes counts
	// the measurements completed.
	Probing bool   `json:"probing"`
	Probes  uint64 `json:"probes"`
	// Windows counts the windows that ended in an update of the limit.
	Windows uint64 `json:"windows"`
}

// Metrics returns a snapshot of the limiter's state and counters. It takes
// the updater's lock, briefly; counters of calls in progress may be one
// behind.
func (l *Limiter) Metrics() Metrics {
	m := l.bh.Metrics()
	l.mu.Lock()
	st := l.st
	l.mu.Unlock()
	return Metrics{
		Limit:    l.bh.Limit(),
		Estimate: st.limit,
		InFlight: m.InFlight,
		Waiting:  m.Waiting,
		Admitted: m.Admitted,
		Rejected: m.Rejected,
		WaitTime: m.WaitTime,
		Baseline: time.Duration(st.baseline),
		Sampled:  time.Duration(st.sampled),
		Probing:  st.probing,
		Probes:   st.probes,
		Windows:  st.windows,
	}
}

// Registration is how package registry names the limiter and hears of its
// waits and of its limit's changes. Its result is opaque outside this
// module.
func (l *Limiter) Registration() *obs.Slot { return l.bh.Registration() }
