package throttle

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrThrottled is the error of a request the throttle rejected locally: it
// matches seawall.ErrRejected with errors.Is, and carries no retry-after
// hint.
//
// It has no hint on purpose, so that a retry does not repeat the request
// (retry.DefaultRetryable refuses a rejection without a hint): the throttle
// rejects because the backend has been refusing work, and a retry of the
// rejected request would be one more request to a backend that cannot take
// it, the very load the throttle sheds. The caller should fail (or fall
// back) now; its own caller's throttle, if any, will see that.
var ErrThrottled = seawall.NewRejection("throttle: rejected locally: the backend has been refusing requests")

// A Throttle is client-side adaptive throttling, as described in the SRE
// book ("Handling Overload", client-side throttling): a client that sees
// its backend refuse work rejects some requests itself, before they cost
// the backend anything, with probability
//
//	max(0, (requests − K × accepts) / (requests + 1))
//
// capped at [Config.MaxProbability], where requests and accepts are counted
// over the last [Config.Window] (2 minutes by default). requests counts
// every request the application made through the throttle, those it
// rejected itself included; accepts counts those the backend accepted
// (answered with anything but a refusal). While the backend accepts
// everything, requests ≤ K × accepts and nothing is rejected; once it
// refuses, the throttle lets through about K requests per accepted one, and
// the load it sends follows what the backend can take, without any
// configured number.
//
// What is a refusal is [Config.Rejected] (default seawall.IsOverload);
// [Permit.Done] says how every outcome counts. A request is counted when
// its outcome is recorded.
//
// There are two ways to use it. The primitive: [Throttle.Allow] returns a
// [Permit] (or ErrThrottled), and [Permit.Done] records the outcome; this
// path allocates nothing, and while the backend accepts takes no lock and
// reads no clock. The convenience: [Throttle.Do] wraps a function,
// satisfying seawall.Policy.
//
// # Cost: the accept path reads no clock
//
// Accepts are counted in per-P counters (internal/shard), cumulatively:
// recording one is a single increment of the caller's own P's line. The
// other requests, refusals and local rejections, are few while the backend
// is healthy, and each is a slow-path visit: it takes a mutex, reads the
// clock and records a sample (time, accepts so far, others so far) in a
// ring. A window's counts are the counts so far minus their estimate at the
// window's start, interpolated linearly between the two samples around it
// (or between the newest sample and now), as the retry budget estimates its
// requests.
//
// Allow reads one atomic word. While it says "admit", Allow returns a
// Permit at once: no clock, no lock, no write. A slow path sets it to
// "admit" when it finds the probability 0 and finds that it will stay 0,
// whatever the time, until the next refusal or local rejection, each of
// which sets it back. That takes more than a probability of 0: accepts
// ageing out of the window raise the probability when refusals newer than
// them remain (100 accepts, then 90 refusals: 0 until the accepts leave,
// then 0.9). So the slow path checks every later start of the window: the
// estimate is linear between samples, so checking the start now and the
// samples after it is enough, and it asks that each later window hold at
// least 1/(K−1) accepts per refusal or rejection (with K = 1: none of
// those). The threshold, an accept count, is computed at most once per
// Window/120 or per refusal. Until the word says "admit", and whenever the
// probability is above 0, every Allow is a slow-path visit, which decides
// from the estimate of that moment.
//
// The samples follow the visits and are kept at least Window/120 apart two
// by two, in a ring of 241 that spans a window, so that each count is
// placed within about Window/120 (1s by default) of its time when visits
// are frequent: while the throttle is rejecting, every Allow is one; a
// refusal or a rejection is sampled both before and after it, so it is
// placed at its time exactly. A healthy throttle makes no visit: the
// accepts since the newest sample are then spread evenly over the time
// since it, which is exact for traffic at a steady pace and otherwise moves
// accepts in time (a burst at the start of an hour of silence counts as
// spread over the hour). [Throttle.Metrics] and [Throttle.Probability] are
// visits too.
//
// The zero Config is valid (see [Config]). A Throttle is safe for
// concurrent use by multiple goroutines.
type Throttle struct {
	// Read by every call, written only on a change of the decision (state)
	// or by Ps beyond the counters' lines: the padding keeps the mutex
	// and the samples, written by every slow path, off this cache line.
	state    uint32         // atomic: admit (0), or ask the slow path (slow)
	counts   shard.Counters // per-P: cAccepts, so far
	rejected func(error) bool
	_        [64]byte

	epoch time.Time                     // the clock is read as since(epoch): cheap and monotonic
	since func(time.Time) time.Duration // time.Since; tests count its calls
	k     float64
	maxP  float64
	rand  func() float64

	mu  sync.Mutex
	win window // the samples
	// Under mu: the requests other than accepts, so far; and the least
	// accept count at which Allow may admit at once (see window.need),
	// computed at needAt, with needNA others.
	refused, throttled uint64
	need               float64
	needAt             int64
	needNA             uint64
	// Under mu: the accepts so far at the latest refusal, and LiftAfter
	// (0: NoLift).
	accAtRefusal, liftAfter uint64

	forgotten atomic.Uint64

	slot obs.Slot // the registry that named this throttle, if any
}

const (
	admit = 0 // Allow admits at once: the probability is 0 until a refusal
	slow  = 1 // Allow asks the slow path

	cAccepts = 0 // the per-P counter of accepts
)

// New returns a throttle configured by cfg, or an error naming the first
// invalid field of cfg.
func New(cfg Config) (*Throttle, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Throttle{
		rejected:  cfg.Rejected,
		epoch:     time.Now(),
		since:     time.Since,
		k:         cfg.K,
		maxP:      cfg.MaxProbability,
		rand:      cfg.Rand,
		liftAfter: uint64(cfg.LiftAfter),
	}
	if t.rejected == nil {
		t.rejected = seawall.IsOverload
	}
	if t.rand == nil {
		t.rand = rand.Float64
	}
	t.counts.Init()
	t.win.init(cfg.Window)
	return t, nil
}

// now returns the time since t was made, in nanoseconds. The monotonic
// clock never goes back, but a throttle used under a fake clock that
// starts earlier (a testing/synctest bubble) would see negative times;
// clamping keeps every time computed from it in range.
func (t *Throttle) now() int64 { return max(int64(t.since(t.epoch)), 0) }

// point returns the counts at now as a sample; t.mu is held.
func (t *Throttle) point(now int64) sample {
	return sample{now, t.counts.Load(cAccepts), t.refused + t.throttled}
}

// A Permit is the throttle's admission of one request. Record its outcome
// with one call of [Permit.Done]; a Permit never recorded is forgotten, as
// if the request had not been made. A Permit is a small value: pass it by
// value; the zero Permit records nothing.
type Permit struct {
	t *Throttle
}

// Allow asks the throttle to admit one request. It returns a Permit on
// which the caller records the outcome, or ErrThrottled if the throttle
// rejects the request, which then counts as a request (and not as an
// accept) at once.
func (t *Throttle) Allow() (Permit, error) {
	if atomic.LoadUint32(&t.state) != admit {
		return t.allowSlow()
	}
	return Permit{t}, nil
}

// allowSlow is Allow when the probability may be above 0: it estimates the
// window now, and admits, rejects, or finds that Allow may admit at once
// again. Rand is called outside the mutex.
func (t *Throttle) allowSlow() (Permit, error) {
	t.mu.Lock()
	now := t.now()
	cur := t.point(now)
	acc, na := t.win.counts(now, cur)
	t.win.record(cur)
	p := t.probability(acc+na, acc)
	if t.lifted(cur) {
		p = 0
		atomic.StoreUint32(&t.state, admit) // until the next refusal
	} else if p == 0 && t.settled(now, cur) {
		atomic.StoreUint32(&t.state, admit)
	}
	t.mu.Unlock()
	if p == 0 || t.rand() >= p {
		return Permit{t}, nil
	}
	t.mu.Lock()
	t.throttled++
	t.win.record(t.point(now))         // the rejection, at its time
	atomic.StoreUint32(&t.state, slow) // another caller may have found the probability 0 meanwhile
	t.mu.Unlock()
	return Permit{}, ErrThrottled
}

// settled reports whether the probability, 0 now, stays 0 until a refusal
// or a local rejection is counted, cur being the counts at now: whether
// enough accepts have come after the window's refusals (see window.need).
// The threshold is computed again at most once per sample width, or when
// such a request has been counted; in between, it can only be too high
// (the window slides towards fewer refusals), never too low. t.mu is held.
func (t *Throttle) settled(now int64, cur sample) bool {
	if float64(cur.acc) >= t.need && cur.na == t.needNA {
		return true
	}
	if cur.na != t.needNA || now-t.needAt >= t.win.width {
		t.need, t.needAt, t.needNA = t.win.need(now, cur, t.k-1), now, cur.na
	}
	return float64(cur.acc) >= t.need
}

// lifted reports whether the backend has accepted LiftAfter requests since
// its latest refusal, cur being the counts now: then the throttle admits
// every request until the next refusal. t.mu is held.
func (t *Throttle) lifted(cur sample) bool {
	return t.liftAfter > 0 && t.refused > 0 && cur.acc-t.accAtRefusal >= t.liftAfter
}

// refuse counts a refusal of the backend: a slow-path visit, which
// records the counts before and after it, so that it is counted at its
// time even after a long silence (the samples around it are both now),
// and makes Allow ask the slow path.
func (t *Throttle) refuse() {
	t.mu.Lock()
	now := t.now()
	t.win.record(t.point(now))
	t.refused++
	t.win.record(t.point(now))
	t.accAtRefusal = t.counts.Load(cAccepts)
	atomic.StoreUint32(&t.state, slow)
	t.mu.Unlock()
}

// probability is the rejection probability at req requests and acc
// accepts.
func (t *Throttle) probability(req, acc float64) float64 {
	return min(max(0, (req-t.k*acc)/(req+1)), t.maxP)
}

// Done records the outcome of the request, err being its error:
//
//   - nil, or any error that is not one of the below, is an accept (the
//     backend took the request: a failure or a timeout is the breaker's
//     business, not a refusal of work);
//   - an error [Config.Rejected] reports (by default, seawall.IsOverload)
//     is a refusal: a request that is not an accept;
//   - any other seawall.ErrRejected, such as a local breaker's
//     seawall.ErrCircuitOpen or a local bulkhead's refusal, and
//     context.Canceled are forgotten, as if the request had not been made:
//     the request never reached the backend, or the caller gave up on it,
//     so the backend gave no answer to count.
//
// context.DeadlineExceeded is an accept: the backend took the request and
// was too slow, which the throttle does not judge. A request counts when
// its outcome is recorded: an outcome that comes late counts in the window
// of its arrival.
//
// An accept is one increment of a per-P counter: no clock, no lock. A
// refusal is a slow-path visit: it takes the throttle's mutex and reads
// the clock (see [Throttle]). Rejected is called outside the mutex.
func (p Permit) Done(err error) {
	t := p.t
	if t == nil {
		return
	}
	if err == nil {
		i := shard.Pin() // Counters.Add, one call less
		t.counts.AddPinned(i, cAccepts)
		shard.Unpin()
		return
	}
	t.doneErr(err)
}

func (t *Throttle) doneErr(err error) {
	switch {
	case t.rejected(err):
		t.refuse()
	case errors.Is(err, seawall.ErrRejected) || errors.Is(err, context.Canceled):
		t.forgotten.Add(1)
	default:
		t.counts.Add(cAccepts)
	}
}

// Do runs op if the throttle admits it, records its outcome (see
// [Permit.Done]), and returns its error; if the throttle rejects it, Do
// returns ErrThrottled without running op. A panic in op is not recorded
// (the request is forgotten) and continues. Do satisfies seawall.Policy.
func (t *Throttle) Do(ctx context.Context, op func(context.Context) error) error {
	p, err := t.Allow()
	if err != nil {
		return err
	}
	err = op(ctx)
	p.Done(err)
	return err
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy, so that a pipeline through the
// throttle allocates nothing.
func (t *Throttle) DoChain(ctx context.Context, c seawall.Chain) error {
	p, err := t.Allow()
	if err != nil {
		return err
	}
	err = c.Run(ctx)
	p.Done(err)
	return err
}

// Probability returns the probability with which the throttle rejects a
// request now: max(0, (requests − K × accepts) / (requests + 1)) over the
// window, capped at MaxProbability. It is a slow-path visit: it takes the
// mutex, reads the clock and records a sample.
func (t *Throttle) Probability() float64 {
	return t.Metrics().Probability
}

// Metrics is a snapshot of a throttle's counts.
type Metrics struct {
	// Probability is the rejection probability now ([Throttle.Probability]).
	Probability float64 `json:"probability"`
	// Requests and Accepts are the counts of the window the probability is
	// computed from: the requests recorded (those the throttle rejected
	// included) and those the backend accepted.
	Requests uint64 `json:"requests"`
	Accepts  uint64 `json:"accepts"`
	// Throttled counts the requests the throttle rejected, Refused those
	// the backend refused, and Forgotten the outcomes not counted (see
	// [Permit.Done]), since the throttle was made.
	Throttled uint64 `json:"throttled"`
	Refused   uint64 `json:"refused"`
	Forgotten uint64 `json:"forgotten"`
}

// Metrics returns a snapshot of the throttle's counts. Requests and
// Accepts are the window's estimates (see [Throttle]), rounded. Like
// Probability it is a slow-path visit, and calling it periodically, as a
// metrics exporter does, keeps the samples close; it does not stop
// requests that take the fast path.
func (t *Throttle) Metrics() Metrics {
	t.mu.Lock()
	now := t.now()
	cur := t.point(now)
	acc, na := t.win.counts(now, cur)
	t.win.record(cur)
	p := t.probability(acc+na, acc)
	if t.lifted(cur) {
		p = 0
	}
	m := Metrics{
		Probability: p,
		Requests:    uint64(math.Round(acc + na)),
		Accepts:     uint64(math.Round(acc)),
		Throttled:   t.throttled,
		Refused:     t.refused,
	}
	t.mu.Unlock()
	m.Forgotten = t.forgotten.Load()
	return m
}

// Registration is how package registry names the throttle. Its result is
// opaque outside this module.
func (t *Throttle) Registration() *obs.Slot { return &t.slot }
