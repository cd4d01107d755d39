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
// [Permit.Done] says how every outcome counts.
//
// There are two ways to use it. The primitive: [Throttle.Allow] returns a
// [Permit] (or ErrThrottled), and [Permit.Done] records the outcome; this
// path takes no lock and allocates nothing. The convenience:
// [Throttle.Do] wraps a function, satisfying seawall.Policy.
//
// # Cost
//
// The counts live in 120 buckets of Window/120, each one atomic word
// holding both counts of its interval, so recording an accepted request is
// one atomic add; Allow reads the clock once, the sums of the window's
// older buckets (taken when a bucket starts, the only slow path, once per
// bucket width) and the current bucket's word. A request is counted when
// its outcome is recorded, in the bucket it was admitted in.
//
// The zero Config is valid (see [Config]). A Throttle is safe for
// concurrent use by multiple goroutines.
type Throttle struct {
	// The sums of the window's buckets older than the current one, read by
	// every Allow and written once per bucket width. past is the index of
	// the bucket they were taken at, -1 while they are written: a reader
	// that sees the same index before and after reading the sums has read
	// a consistent pair (a sequence lock).
	past             atomic.Int64
	pastReq, pastAcc atomic.Uint64
	_                [40]byte // keeps the buckets, written by every call, off this line

	buckets [nBuckets]bucket

	epoch    time.Time // the clock is read as time.Since(epoch): cheap and monotonic
	width    int64     // a bucket's width, ns
	k, maxP  float64
	rejected func(error) bool
	rand     func() float64

	mu sync.Mutex // serialises the start of a bucket

	throttled, refused, forgotten atomic.Uint64 // slow-path counters, since creation
}

// nBuckets is the number of buckets of a window: the counts forget a
// bucket whole, so the window is exact to 1/120 of its span (1s by
// default), and the slow path that sums them runs at most once per bucket.
const nBuckets = 120

// A bucket counts the requests admitted in one bucket-wide interval, idx:
// n holds requests in its upper 32 bits and accepts in its lower 32, so
// that an accepted request is one atomic add of reqOne|accOne. Accepts never
// exceed requests, and a bucket of at most 30s (a 1h window) would need
// over 140 million requests a second to overflow its 32 bits.
type bucket struct {
	idx atomic.Int64
	n   atomic.Uint64
}

const (
	reqOne  = 1 << 32
	accOne  = 1
	accMask = 1<<32 - 1
	noIdx   = math.MinInt64 / 2 // the index of a bucket never used
)

// New returns a throttle configured by cfg, or an error naming the first
// invalid field of cfg.
func New(cfg Config) (*Throttle, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Throttle{
		epoch:    time.Now(),
		width:    int64(cfg.Window) / nBuckets,
		k:        cfg.K,
		maxP:     cfg.MaxProbability,
		rejected: cfg.Rejected,
		rand:     cfg.Rand,
	}
	if t.rejected == nil {
		t.rejected = seawall.IsOverload
	}
	if t.rand == nil {
		t.rand = rand.Float64
	}
	t.past.Store(-1)
	for i := range t.buckets {
		t.buckets[i].idx.Store(noIdx)
	}
	return t, nil
}

// now returns the index of the current bucket. The monotonic clock never
// goes back, but a throttle used under a fake clock that starts earlier (a
// testing/synctest bubble) would see negative times; clamping keeps the
// indexes non-negative.
func (t *Throttle) now() int64 { return max(int64(time.Since(t.epoch)), 0) / t.width }

// A Permit is the throttle's admission of one request. Record its outcome
// with one call of [Permit.Done]; a Permit never recorded is forgotten, as
// if the request had not been made. A Permit is a small value: pass it by
// value; the zero Permit records nothing.
type Permit struct {
	t   *Throttle
	idx int64 // the bucket it was admitted in
}

// Allow asks the throttle to admit one request. It returns a Permit on
// which the caller records the outcome, or ErrThrottled if the throttle
// rejects the request, which then counts as a request (and not as an
// accept) at once.
func (t *Throttle) Allow() (Permit, error) {
	cur := t.now()
	v := t.past.Load()
	if v != cur {
		return t.allowSlow(cur)
	}
	req, acc := t.pastReq.Load(), t.pastAcc.Load()
	if t.past.Load() != v {
		return t.allowSlow(cur)
	}
	n := t.buckets[cur%nBuckets].n.Load()
	req += n >> 32
	acc += n & accMask
	if float64(req) <= t.k*float64(acc) {
		return Permit{t, cur}, nil
	}
	return t.decide(cur, req, acc)
}

// allowSlow is Allow when a bucket starts, or when it races with the
// start of one.
func (t *Throttle) allowSlow(cur int64) (Permit, error) {
	cur, req, acc := t.advance(cur)
	n := t.buckets[cur%nBuckets].n.Load()
	req += n >> 32
	acc += n & accMask
	if float64(req) <= t.k*float64(acc) {
		return Permit{t, cur}, nil
	}
	return t.decide(cur, req, acc)
}

// decide admits or rejects a request at a rejection probability above 0.
func (t *Throttle) decide(cur int64, req, acc uint64) (Permit, error) {
	if t.rand() < t.probability(req, acc) {
		t.add(cur, reqOne)
		t.throttled.Add(1)
		return Permit{}, ErrThrottled
	}
	return Permit{t, cur}, nil
}

// probability is the rejection probability at req requests and acc
// accepts.
func (t *Throttle) probability(req, acc uint64) float64 {
	r := float64(req)
	return min(max(0, (r-t.k*float64(acc))/(r+1)), t.maxP)
}

// advance makes cur the current bucket, unless a later one already is, and
// returns the current bucket and the sums of the buckets before it in the
// window.
func (t *Throttle) advance(cur int64) (int64, uint64, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v := t.past.Load(); v >= cur {
		// Another caller started this bucket, or a later one (this
		// caller read the clock before it did).
		return v, t.pastReq.Load(), t.pastAcc.Load()
	}
	b := &t.buckets[cur%nBuckets]
	// The index first: a request of the bucket this one replaces, recorded
	// between the two stores, is wiped, not counted in the new bucket.
	b.idx.Store(cur)
	b.n.Store(0)
	var req, acc uint64
	for i := range t.buckets {
		bk := &t.buckets[i]
		if j := bk.idx.Load(); j < cur && j > cur-nBuckets {
			n := bk.n.Load()
			req += n >> 32
			acc += n & accMask
		}
	}
	t.past.Store(-1)
	t.pastReq.Store(req)
	t.pastAcc.Store(acc)
	t.past.Store(cur)
	return cur, req, acc
}

// add adds d to the counts of bucket idx, unless it has left the window
// (its slot holds a later bucket): a request whose outcome came later than
// a window after its admission is forgotten.
func (t *Throttle) add(idx int64, d uint64) {
	b := &t.buckets[idx%nBuckets]
	if b.idx.Load() == idx {
		b.n.Add(d)
	}
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
// was too slow, which the throttle does not judge. A request counts in the
// bucket it was admitted in; if its outcome comes when that bucket has left
// the window, it is forgotten.
func (p Permit) Done(err error) {
	t := p.t
	if t == nil {
		return
	}
	if err == nil {
		t.add(p.idx, reqOne|accOne)
		return
	}
	t.doneErr(p.idx, err)
}

func (t *Throttle) doneErr(idx int64, err error) {
	switch {
	case t.rejected(err):
		t.add(idx, reqOne)
		t.refused.Add(1)
	case errors.Is(err, seawall.ErrRejected) || errors.Is(err, context.Canceled):
		t.forgotten.Add(1)
	default:
		t.add(idx, reqOne|accOne)
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

// window returns the requests and accepts counted in the window at the
// current bucket, summing the buckets: Probability and Metrics read them
// so, without starting a bucket.
func (t *Throttle) window() (req, acc uint64) {
	cur := t.now()
	for i := range t.buckets {
		bk := &t.buckets[i]
		if j := bk.idx.Load(); j <= cur && j > cur-nBuckets {
			n := bk.n.Load()
			req += n >> 32
			acc += n & accMask
		}
	}
	return req, acc
}

// Probability returns the probability with which the throttle rejects a
// request now: max(0, (requests − K × accepts) / (requests + 1)) over the
// window, capped at MaxProbability.
func (t *Throttle) Probability() float64 {
	return t.probability(t.window())
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

// Metrics returns a snapshot of the throttle's counts, read from atomics
// without stopping requests.
func (t *Throttle) Metrics() Metrics {
	req, acc := t.window()
	return Metrics{
		Probability: t.probability(req, acc),
		Requests:    req,
		Accepts:     acc,
		Throttled:   t.throttled.Load(),
		Refused:     t.refused.Load(),
		Forgotten:   t.forgotten.Load(),
	}
}
