package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// ErrLimited is the rejection of a limiter that refuses an event: not enough
// tokens now (Allow, Try, Do), or not before the caller's deadline (Wait).
// It matches seawall.ErrRejected with errors.Is. Every error a limiter
// returns for a refusal matches it and carries a retry-after hint
// (seawall.RetryAfter): the exact time until enough tokens will be in the
// bucket, if nothing else takes them meanwhile.
var ErrLimited = seawall.NewRejection("ratelimit: limited")

// limitedError is a refusal with its retry-after hint. It is allocated only
// when a refusal is returned as an error; Allow returns a bool and
// allocates nothing.
type limitedError struct{ after time.Duration }

func (e *limitedError) Error() string             { return ErrLimited.Error() }
func (e *limitedError) Unwrap() error             { return ErrLimited }
func (e *limitedError) RetryAfter() time.Duration { return e.after }

func limited(delay int64) error { return &limitedError{after: time.Duration(max(delay, 0))} }

// errExceedsBurst is returned when n tokens are asked for and n exceeds the
// burst: no wait can ever grant them, so it is not a rejection to retry.
func errExceedsBurst(n, burst int) error {
	return fmt.Errorf("ratelimit: n %d exceeds Burst %d", n, burst)
}

// An Allower is a rate limiter that admits or refuses one event now: a
// *Limiter, or golang.org/x/time/rate's *rate.Limiter. The middleware
// packages (httpmw, grpcmw) accept any Allower; a *Limiter also tells them,
// through Try, when its next token comes.
type Allower interface {
	Allow() bool
}

// A KeyedLimiter is a limit per key (per client, per tenant) that admits
// or refuses n events for a key now: a *Keyed, or a limit a fleet shares.
// Try returns nil if the events may happen, or an error matching
// [ErrLimited] whose retry-after hint (seawall.RetryAfter) says when they
// could. The middleware packages (httpmw, grpcmw) accept any KeyedLimiter.
//
// Try must not keep key, or any part of it, after it returns: a limiter
// that remembers a key copies it first (strings.Clone), as Keyed does,
// because a caller may pass a key that shares its bytes with memory it
// does not own, such as the peer address by which grpcmw names a client.
type KeyedLimiter interface {
	Try(key string, n int) error
}

// InfDuration is the delay of a Reservation that is not OK.
const InfDuration = time.Duration(math.MaxInt64)

// Times are nanoseconds since the limiter's epoch.
const (
	// full is the initial TAT: a bucket full since long before the epoch,
	// so that times before the epoch (AllowN with an earlier t) find it
	// full too.
	full int64 = -1 << 62
	// maxTAT bounds how far ahead reservations may push the TAT (146 years
	// after the epoch), so that no time computed from it overflows.
	maxTAT int64 = 1 << 62
)

// params are a limiter's settings, immutable once published: SetRate and
// SetBurst publish new ones, so every call reads a consistent set with one
// atomic load.
type params struct {
	inf      bool
	burst    int
	rate     float64
	interval int64 // the emission interval 1/rate (T in GCRA), ns, ≥ 1
	tau      int64 // the burst tolerance, burst × interval: how far the TAT may run ahead of now
}

func newParams(rate float64, burst int) *params {
	p := &params{rate: rate, burst: burst, inf: math.IsInf(rate, 1)}
	if !p.inf {
		p.interval = max(int64(math.Round(float64(time.Second)/rate)), 1)
		p.tau = int64(burst) * p.interval
	}
	return p
}

// A Limiter controls how often events may happen. It is a token bucket of
// Burst tokens, initially full, refilled at Rate tokens per second; each
// event takes one token (AllowN, Try, ReserveN and WaitN take n). Over any
// interval of length d it allows at most Rate × d + Burst events.
//
// It implements the bucket as GCRA, the generic cell rate algorithm: its
// whole state is one atomic word, the theoretical arrival time (TAT), the
// time at which the bucket will be full again. Taking n tokens at time now
// moves the TAT to max(TAT, now) + n/Rate, and is allowed if the new TAT is
// at most Burst/Rate after now. A call reads the clock at most once (as
// time.Since of the limiter's creation: monotonic and cheap; or, cheaper
// and coarser, a clock.Coarse named by [Config.Clock]) and makes one
// compare-and-swap, so the hot path takes no lock and allocates nothing;
// under heavy contention the single word is the bottleneck, as a mutex
// would be. An infinite Rate allows every event and reads no clock.
//
// There are three ways to ask for tokens, differing in what happens when
// there are not enough:
//
//   - [Limiter.Allow] (and AllowN, Try) refuses at once. Use it to drop or
//     reject events over the limit; Try returns an [ErrLimited] error with a
//     retry-after hint. [Limiter.Do], the seawall.Policy, works this way.
//   - [Limiter.Reserve] (and ReserveN) always takes the tokens and says how
//     long to wait before acting; the reservation can be cancelled.
//   - [Limiter.Wait] (and WaitN) waits for the tokens, honouring its
//     context: it fails at once if they would come after the deadline.
//
// The methods ending in N take the time as an argument, like
// golang.org/x/time/rate; the others read the clock. [Limiter.SetRate] and
// [Limiter.SetBurst] change the settings at run time.
//
// A Limiter is made by [New] from a [Config]. It is safe for concurrent use
// by multiple goroutines.
type Limiter struct {
	// Read by every call, written rarely (SetRate, SetBurst, the counters'
	// overflow line).
	p      atomic.Pointer[params]
	epoch  time.Time     // the clock is read as time.Since(epoch): cheap and monotonic
	clock  *clock.Coarse // if set, read instead, and epoch is its start
	counts shard.Counters
	// The padding keeps the TAT, written by every allowed call from any
	// goroutine, off the cache lines of the read-mostly fields above, so
	// that its writes do not evict them from other cores' caches.
	_   [64]byte
	tat atomic.Int64 // the theoretical arrival time, ns since epoch
	_   [56]byte

	mu sync.Mutex // serializes SetRate and SetBurst

	slot obs.Slot // the registry that named this limiter, if any
}

// Indexes of the per-P counters.
const (
	cAllowed = iota
	cLimited
)

// New returns a limiter configured by cfg, with a full bucket, or an error
// naming the first invalid field of cfg.
func New(cfg Config) (*Limiter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Limiter{epoch: time.Now()}
	if c := cfg.Clock; c != nil {
		l.clock, l.epoch = c, c.Start()
	}
	l.p.Store(newParams(cfg.Rate, cfg.Burst))
	l.tat.Store(full)
	l.counts.Init()
	return l, nil
}

// now returns the time since l's epoch, ns: the coarse clock's reading if
// the Config named one and it runs (its start is l's epoch), else the
// runtime's.
func (l *Limiter) now() int64 {
	if t, ok := l.coarse(); ok {
		return t
	}
	return int64(time.Since(l.epoch))
}

// coarse returns the coarse clock's reading, or false if there is none or
// it is stopped. It is the first half of now, for the hot paths (Allow,
// Try, Reserve and their refusals) to write now out: time.Since is a call,
// so now does not fit the inliner's budget, and calling now would add a
// call to the default path (no coarse clock), where this half costs only a
// nil check.
func (l *Limiter) coarse() (int64, bool) {
	if c := l.clock; c != nil {
		t, ok := c.Read()
		return int64(t), ok
	}
	return 0, false
}

// at returns t as ns since l's epoch.
func (l *Limiter) at(t time.Time) int64 { return int64(t.Sub(l.epoch)) }

// take takes n tokens at now, 0 < n ≤ p.burst, if they are available
// within maxDelay (0: now). It returns the new TAT and how long to wait
// before acting; if not ok, it changed nothing and delay is how long until
// the tokens would be available.
func (l *Limiter) take(p *params, now int64, n int, maxDelay int64) (tat, delay int64, ok bool) {
	cost := int64(n) * p.interval // ≤ tau: n ≤ burst
	for {
		old := l.tat.Load()
		tat = max(old, now) + cost
		delay = tat - p.tau - now // > 0: tokens are missing for that long
		if delay > 0 && (delay > maxDelay || tat > maxTAT) {
			return old, delay, false
		}
		if l.tat.CompareAndSwap(old, tat) {
			return tat, max(delay, 0), true
		}
	}
}

// allow is AllowN at now.
func (l *Limiter) allow(p *params, now int64, n int) bool {
	if n <= p.burst {
		if n <= 0 {
			return true
		}
		if _, _, ok := l.take(p, now, n, 0); ok {
			l.counts.Add(cAllowed)
			return true
		}
	}
	l.counts.Add(cLimited)
	return false
}

// Allow reports whether an event may happen now, and if so takes a token
// for it. It is shorthand for AllowN(time.Now(), 1), reading the clock more
// cheaply. It allocates nothing.
func (l *Limiter) Allow() bool {
	p := l.p.Load()
	if p.inf {
		l.counts.Add(cAllowed)
		return true
	}
	// take(p, l.now(), 1, 0), written out: this is the hottest path, and
	// under contention every instruction between the load and the CAS
	// widens the window in which another core's CAS makes this one fail.
	now, ok := l.coarse()
	if !ok {
		now = int64(time.Since(l.epoch))
	}
	for {
		old := l.tat.Load()
		tat := max(old, now) + p.interval
		if tat-p.tau > now {
			return l.allowLate(p, now)
		}
		if l.tat.CompareAndSwap(old, tat) {
			l.counts.Add(cAllowed)
			return true
		}
	}
}

// allowLate decides an Allow that the bucket refuses at now. A goroutine
// may stall between reading the clock and deciding (a busy machine, a GC
// pause) and judge the bucket at a time long past, refusing tokens that
// came since: so it reads the clock again, once, and tries at that time
// before refusing. Only a refusal pays the second read.
func (l *Limiter) allowLate(p *params, now int64) bool {
	t, ok := l.coarse() // l.now(), written out (see coarse)
	if !ok {
		t = int64(time.Since(l.epoch))
	}
	if t > now {
		for {
			old := l.tat.Load()
			tat := max(old, t) + p.interval
			if tat-p.tau > t {
				break
			}
			if l.tat.CompareAndSwap(old, tat) {
				l.counts.Add(cAllowed)
				return true
			}
		}
	}
	l.counts.Add(cLimited)
	return false
}

// retake takes n tokens at a fresh reading of the clock, after take
// refused them at now, which may be stale (see allowLate); ok is false,
// and changes nothing, if the clock has not moved.
func (l *Limiter) retake(p *params, now int64, n int) (delay int64, ok bool) {
	t, ok := l.coarse() // l.now(), written out (see coarse)
	if !ok {
		t = int64(time.Since(l.epoch))
	}
	if t <= now {
		return 0, false
	}
	_, delay, ok = l.take(p, t, n, 0)
	return delay, ok
}

// AllowN reports whether n events may happen at time t, and if so takes n
// tokens for them. It returns false if n exceeds the burst. n ≤ 0 asks for
// nothing and is always allowed. Times before earlier calls' are allowed
// (the bucket does not refill backwards), but only help if the bucket was
// full then.
func (l *Limiter) AllowN(t time.Time, n int) bool {
	p := l.p.Load()
	if p.inf {
		l.counts.Add(cAllowed)
		return true
	}
	return l.allow(p, l.at(t), n)
}

// Try takes n tokens now if the bucket holds them, and returns nil. If not,
// it takes nothing and returns an error matching [ErrLimited] (and
// seawall.ErrRejected) whose retry-after hint is the time until n tokens
// will be in the bucket. If n exceeds the burst it returns an error that
// does not match ErrLimited: waiting would never help. n ≤ 0 asks for
// nothing and returns nil. Only a refusal allocates (its error).
func (l *Limiter) Try(n int) error {
	p := l.p.Load()
	if p.inf || n <= 0 {
		l.counts.Add(cAllowed)
		return nil
	}
	if n > p.burst {
		l.counts.Add(cLimited)
		return errExceedsBurst(n, p.burst)
	}
	now, ok := l.coarse() // l.now(), written out (see coarse)
	if !ok {
		now = int64(time.Since(l.epoch))
	}
	if _, delay, ok := l.take(p, now, n, 0); !ok {
		if d, ok := l.retake(p, now, n); !ok {
			if d > 0 {
				delay = d // the fresher
			}
			l.counts.Add(cLimited)
			return limited(delay)
		}
	}
	l.counts.Add(cAllowed)
	return nil
}

// Do runs op if a token is available now, and returns its error; if not, it
// returns at once, without running op, an error matching [ErrLimited] with a
// retry-after hint (see [Limiter.Try]). Do satisfies seawall.Policy.
//
// Do does not wait: a limiter in front of a service sheds the load above
// the rate, and an immediate rejection with a hint lets the caller (or
// seawall's HTTP and gRPC middleware, as 429 + Retry-After) push back,
// where waiting would queue callers in memory and add latency to each. To
// wait for a token instead, call [Limiter.Wait] and then op.
func (l *Limiter) Do(ctx context.Context, op func(context.Context) error) error {
	if err := l.Try(1); err != nil {
		return err
	}
	return op(ctx)
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy, so that a pipeline through the
// limiter allocates nothing. (Do does not call it: a closure passed to Do
// would then escape to the heap.)
func (l *Limiter) DoChain(ctx context.Context, c seawall.Chain) error {
	if err := l.Try(1); err != nil {
		return err
	}
	return c.Run(ctx)
}

// A Reservation holds tokens taken by [Limiter.Reserve] or ReserveN, to be
// used after a delay. It is a small value; copies refer to the same
// reservation.
type Reservation struct {
	l    *Limiter
	p    *params // the settings it was made under
	tat  int64   // the TAT this reservation moved the limiter to
	cost int64   // its tokens, as time (n × interval)
	ok   bool
}

// OK reports whether the limiter granted the tokens. It does not when more
// tokens were asked for than the burst, or (for ReserveN) more than about
// 146 years of them are already reserved. If OK is false, Delay returns
// InfDuration and Cancel does nothing.
func (r Reservation) OK() bool { return r.ok }

// Delay is shorthand for DelayFrom(time.Now()), reading the clock more
// cheaply.
func (r Reservation) Delay() time.Duration {
	switch {
	case !r.ok:
		return InfDuration
	case r.p.inf || r.cost == 0:
		return 0
	}
	return r.delay(r.l.now())
}

// DelayFrom returns how long after t the reservation holder must wait
// before acting: zero means at once. It returns InfDuration if the
// reservation is not OK.
func (r Reservation) DelayFrom(t time.Time) time.Duration {
	switch {
	case !r.ok:
		return InfDuration
	case r.p.inf || r.cost == 0:
		return 0
	}
	return r.delay(r.l.at(t))
}

func (r Reservation) delay(now int64) time.Duration {
	return time.Duration(max(r.tat-r.p.tau-now, 0))
}

// Cancel is shorthand for CancelAt(time.Now()).
func (r Reservation) Cancel() {
	if r.ok && !r.p.inf && r.cost > 0 {
		r.cancel(r.l.now())
	}
}

// CancelAt tells the limiter that the holder will not act, as of time t,
// and gives the tokens back as far as possible (best effort, as
// golang.org/x/time/rate does): nothing if the time to act has come by t,
// or if the rate or burst has changed since the reservation was made, and
// only the part of the tokens that later reservations did not queue behind
// (restoring those would let the later holders act together with new
// arrivals, over the burst).
//
// Cancel a reservation at most once: a second call, after other tokens were
// taken, could give tokens back twice.
func (r Reservation) CancelAt(t time.Time) {
	if r.ok && !r.p.inf && r.cost > 0 {
		r.cancel(r.l.at(t))
	}
}

func (r Reservation) cancel(now int64) {
	l := r.l
	if r.tat-r.p.tau <= now || l.p.Load() != r.p {
		return
	}
	for {
		// Since the time to act is after now, the TAT has been ahead of now
		// ever since: every later reservation added its cost to it, and
		// old - r.tat is what they took.
		old := l.tat.Load()
		if old < r.tat {
			return // something gave tokens back already, maybe this one
		}
		restore := r.cost - (old - r.tat)
		if restore <= 0 || l.tat.CompareAndSwap(old, old-restore) {
			return
		}
	}
}

// Reserve is shorthand for ReserveN(time.Now(), 1), reading the clock more
// cheaply.
func (l *Limiter) Reserve() Reservation {
	p := l.p.Load()
	if p.inf {
		return l.reserve(p, 0, 1)
	}
	now, ok := l.coarse() // l.now(), written out (see coarse)
	if !ok {
		now = int64(time.Since(l.epoch))
	}
	return l.reserve(p, now, 1)
}

// ReserveN takes n tokens at time t, now or in the future, and returns a
// Reservation saying how long to wait before the n events may happen. The
// tokens are taken at once: callers after it wait behind it. Act after
// Delay, or Cancel the reservation. The reservation is not OK (and takes
// nothing) if n exceeds the burst.
//
// Use Reserve to slow down to the rate without dropping events; use Wait
// to respect a context; use Allow to drop events over the rate.
func (l *Limiter) ReserveN(t time.Time, n int) Reservation {
	p := l.p.Load()
	if p.inf {
		return l.reserve(p, 0, n)
	}
	return l.reserve(p, l.at(t), n)
}

func (l *Limiter) reserve(p *params, now int64, n int) Reservation {
	r := Reservation{l: l, p: p}
	switch {
	case p.inf || n <= 0:
		r.ok = true
	case n <= p.burst:
		r.tat, _, r.ok = l.take(p, now, n, maxTAT)
		r.cost = int64(n) * p.interval
	}
	if r.ok {
		l.counts.Add(cAllowed)
	} else {
		l.counts.Add(cLimited)
	}
	return r
}

// Wait is shorthand for WaitN(ctx, 1).
func (l *Limiter) Wait(ctx context.Context) error { return l.WaitN(ctx, 1) }

// WaitN waits until n tokens are available and takes them, or until ctx
// ends. It returns:
//
//   - nil once the tokens are taken;
//   - ctx.Err() if ctx is done on entry, or ends while waiting; the
//     tokens reserved for the wait are then given back (see
//     [Reservation.CancelAt]);
//   - at once, without waiting or taking anything, an error matching
//     [ErrLimited] whose retry-after hint is the time until the tokens will
//     be available, if that time is at or past ctx's deadline: the caller
//     keeps the rest of its time, and its context is still valid, so this is
//     a rejection (the event did not happen; retry after the hint) rather
//     than context.DeadlineExceeded;
//   - an error not matching ErrLimited if n exceeds the burst.
//
// n ≤ 0 asks for nothing. With an infinite rate WaitN only checks ctx.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	p := l.p.Load()
	if n > p.burst && !p.inf {
		l.counts.Add(cLimited)
		return errExceedsBurst(n, p.burst)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.inf || n <= 0 {
		l.counts.Add(cAllowed)
		return nil
	}
	return l.waitSince(ctx, p, n, l.now())
}

// waitSince is WaitN with the clock read at now. As in allowLate, now
// may be stale by the time the tokens are taken (see allowLate): a refusal
// reads the clock again first, and a wait is timed from a fresh reading.
func (l *Limiter) waitSince(ctx context.Context, p *params, n int, now int64) error {
	tat, delay, ok := l.waitTake(ctx, p, now, n)
	if !ok {
		tat, delay, ok = l.waitTake(ctx, p, l.now(), n)
	}
	if !ok {
		l.counts.Add(cLimited)
		return limited(delay)
	}
	l.counts.Add(cAllowed)
	if delay == 0 {
		return nil
	}
	if delay = tat - p.tau - l.now(); delay <= 0 {
		return nil // the tokens came while this goroutine was away
	}
	timer := time.NewTimer(time.Duration(delay))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		Reservation{l: l, p: p, tat: tat, cost: int64(n) * p.interval, ok: true}.cancel(l.now())
		return ctx.Err()
	}
}

// waitTake is WaitN's take at now: the tokens, if they come before ctx's
// deadline.
func (l *Limiter) waitTake(ctx context.Context, p *params, now int64, n int) (tat, delay int64, ok bool) {
	maxDelay := int64(maxTAT)
	if dl, ok := ctx.Deadline(); ok {
		maxDelay = l.at(dl) - now - 1 // acting at the deadline is too late
	}
	return l.take(p, now, n, maxDelay)
}

// SetRate changes the rate, keeping the tokens in the bucket (so a bucket
// that was full stays full). It returns an error, and changes nothing, if r
// is not a valid Config.Rate or the bucket would take too long to refill at
// it. Calls racing with SetRate may be judged by the old or the new rate;
// reservations made before it keep their delays.
func (l *Limiter) SetRate(r float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.p.Load()
	if err := validRate(r); err != nil {
		return err
	}
	if err := validRefill(r, old.burst); err != nil {
		return err
	}
	l.set(old, newParams(r, old.burst))
	return nil
}

// SetBurst changes the burst, keeping the tokens in the bucket up to the new
// burst (so a full bucket is not filled further at once: it refills to the
// new burst at the rate). It returns an error, and changes nothing, if b is
// below 1 or the bucket would take too long to refill. Calls racing with
// SetBurst may be judged by the old or the new burst.
func (l *Limiter) SetBurst(b int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.p.Load()
	if b < 1 {
		return fmt.Errorf("ratelimit: Burst %d out of range [1,+Inf)", b)
	}
	if err := validRefill(old.rate, b); err != nil {
		return err
	}
	l.set(old, newParams(old.rate, b))
	return nil
}

// set publishes np in place of old and converts the TAT so that the bucket
// keeps its tokens (up to the new burst). l.mu is held.
func (l *Limiter) set(old, np *params) {
	l.p.Store(np)
	switch {
	case np.inf:
		return // the TAT is unused
	case old.inf:
		l.tat.Store(full) // coming back from no limit: a full bucket
		return
	}
	now := l.now()
	for {
		tat := l.tat.Load()
		// The tokens missing from the old bucket (more than burst if
		// reservations are pending), then those missing from the new.
		missing := float64(max(tat-now, 0)) / float64(old.interval)
		avail := min(float64(old.burst)-missing, float64(np.burst))
		debt := (float64(np.burst) - avail) * float64(np.interval)
		next := now + int64(min(debt, float64(maxTAT)))
		if l.tat.CompareAndSwap(tat, min(next, maxTAT)) {
			return
		}
	}
}

// Rate returns the rate, in events per second; +Inf for no limit.
func (l *Limiter) Rate() float64 { return l.p.Load().rate }

// Burst returns the burst: the size of the bucket.
func (l *Limiter) Burst() int { return l.p.Load().burst }

// Metrics is a snapshot of a limiter's counters since it was created.
type Metrics struct {
	// Allowed is the number of calls granted tokens: Allow, AllowN and Try
	// that allowed, reservations that are OK, waits that reserved tokens
	// (even if their context then ended), Do calls that ran op.
	Allowed uint64 `json:"allowed"`
	// Limited is the number of calls refused.
	Limited uint64 `json:"limited"`
}

// Metrics returns a snapshot of l's counters. It reads per-P counters
// without a lock; a count may lag by a call in progress.
func (l *Limiter) Metrics() Metrics {
	return Metrics{Allowed: l.counts.Load(cAllowed), Limited: l.counts.Load(cLimited)}
}

// Registration is how package registry names the limiter. Its result is
// opaque outside this module.
func (l *Limiter) Registration() *obs.Slot { return &l.slot }
