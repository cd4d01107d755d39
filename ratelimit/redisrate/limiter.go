package redisrate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
)

// A Limiter is a rate limit shared by every process that uses the same
// Redis, Prefix and Key: a token bucket of Burst tokens, initially full,
// refilled at Rate tokens per second, kept in Redis. Each event takes a
// token (AllowN, Try and WaitN take n). Over any interval of length d the
// fleet is allowed at most Rate × d + Burst events, whatever the number of
// processes.
//
// The bucket is GCRA, as in [ratelimit.Limiter], run by a Lua script (see
// [Script]) that Redis executes atomically in one round trip, on Redis's
// own clock (TIME), so the processes' clocks do not matter. Each call asks
// Redis, through a circuit breaker, within Config.Timeout; while Redis is
// unavailable, Config.Fallback decides: this instance's share of the limit
// in a local ratelimit.Limiter (FallbackLocal, the default), refuse
// (FailClosed) or admit (FailOpen). The package doc has the details.
//
// The methods are those of [ratelimit.Limiter] that make sense for a
// shared bucket:
//
//   - [Limiter.Allow] (and AllowN, Try) refuses at once; Try returns an
//     error matching [ErrLimited] with the exact retry-after hint, to the
//     microsecond. [Limiter.Do], the seawall.Policy, works this way. A
//     Limiter is a ratelimit.Allower with Try, which httpmw and grpcmw
//     take unchanged (WithRateLimit).
//   - [Limiter.Wait] (and WaitN) takes the tokens and waits for them,
//     honouring its context: it fails at once if they would come after
//     the deadline.
//
// The calls take no time argument, unlike ratelimit.Limiter's AllowN: the
// time is Redis's. There is no Reserve: a reservation could not be
// cancelled in Redis without another round trip.
//
// A Limiter is made by [New]. It is safe for concurrent use by multiple
// goroutines.
type Limiter struct {
	c     core
	key   string
	rkey  any                // the Redis key, boxed once
	local *ratelimit.Limiter // FallbackLocal's share; nil in other modes
	mu    sync.Mutex         // serializes SetInstances
}

// New returns a limiter of the bucket cfg.Key in the Redis of client, or
// an error naming the first invalid field of cfg. The client may be any
// go-redis client: single node, Sentinel (a failover client), Cluster or
// Ring. It is an error if it is nil, or if its options show that it would
// not end a call at cfg.Timeout (see [Config.Timeout] and the package
// doc's "Timeouts"). New sends nothing to Redis: the first call loads the
// script.
func New(client redis.UniversalClient, cfg Config) (*Limiter, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	l := &Limiter{key: cfg.Key, rkey: redisKey(cfg.Prefix, cfg.Key)}
	if err := l.c.init(client, cfg); err != nil {
		return nil, err
	}
	if cfg.Fallback == FallbackLocal {
		rate, burst := share(cfg.Rate, cfg.Burst, cfg.Instances)
		if l.local, err = ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst}); err != nil {
			return nil, fmt.Errorf("redisrate: local share of Instances %d: %w", cfg.Instances, err)
		}
	}
	return l, nil
}

// redisKey returns the Redis key of the bucket key: the prefix, then the
// key as the hash tag.
func redisKey(prefix, key string) string { return prefix + "{" + key + "}" }

// Allow reports whether an event may happen now, and if so takes a token
// for it. It is shorthand for AllowN(1).
func (l *Limiter) Allow() bool { return l.AllowN(1) }

// AllowN reports whether n events may happen now, and if so takes n tokens
// for them. It returns false if n exceeds the burst, without asking Redis.
// n ≤ 0 asks for nothing and is always allowed. While Redis is unavailable
// the fallback decides; the fallback path allocates nothing.
func (l *Limiter) AllowN(n int) bool {
	c := &l.c
	if n <= 0 || n > c.burst {
		return l.trivial(n) == nil
	}
	ok, _, err := c.ask(context.Background(), l.rkey, n, 0)
	if err == nil {
		return c.counted(ok)
	}
	switch c.mode {
	case FallbackLocal:
		if n == 1 {
			ok = l.local.Allow()
		} else {
			ok = l.local.AllowN(time.Now(), n)
		}
		return ok // counted by l.local
	case FailClosed:
		c.stats.closed.Add(1)
		return false
	default:
		c.stats.open.Add(1)
		return true
	}
}

// trivial decides n ≤ 0 (allowed) or n > burst (an error), without Redis.
func (l *Limiter) trivial(n int) error {
	if n <= 0 {
		l.c.stats.redisAdmitted.Add(1)
		return nil
	}
	l.c.stats.invalid.Add(1)
	return errExceedsBurst(n, l.c.burst)
}

// Try takes n tokens now if the bucket holds them, and returns nil. If not,
// it takes nothing and returns an error matching [ErrLimited] (and
// seawall.ErrRejected) whose retry-after hint is the time until n tokens
// will be in the bucket, rounded up to the microsecond. If n exceeds the
// burst it returns, without asking Redis, an error that does not match
// ErrLimited: waiting would never help. n ≤ 0 asks for nothing and returns
// nil. While Redis is unavailable the fallback decides: FallbackLocal's
// refusals match ErrLimited with the local hint, FailClosed's match
// [ErrUnavailable].
func (l *Limiter) Try(n int) error { return l.try(context.Background(), n) }

func (l *Limiter) try(ctx context.Context, n int) error {
	c := &l.c
	if n <= 0 || n > c.burst {
		return l.trivial(n)
	}
	ok, wait, err := c.ask(ctx, l.rkey, n, 0)
	if err == nil {
		if c.counted(ok) {
			return nil
		}
		return &limitedError{after: wait}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch c.mode {
	case FallbackLocal:
		return l.local.Try(n) // counted by l.local
	case FailClosed:
		c.stats.closed.Add(1)
		return unavailable(err)
	default:
		c.stats.open.Add(1)
		return nil
	}
}

// Do runs op if a token is available now, and returns its error; if not,
// it returns at once, without running op, the refusal of [Limiter.Try]
// (or ctx's error, if ctx ended while Redis was asked). Do satisfies
// seawall.Policy. As ratelimit.Limiter's Do, it does not wait: call
// [Limiter.Wait] and then op for that.
func (l *Limiter) Do(ctx context.Context, op func(context.Context) error) error {
	if err := l.try(ctx, 1); err != nil {
		return err
	}
	return op(ctx)
}

// DoChain is Do running c, the rest of a seawall.Pipeline, in place of a
// function: it satisfies seawall.ChainPolicy.
func (l *Limiter) DoChain(ctx context.Context, c seawall.Chain) error {
	if err := l.try(ctx, 1); err != nil {
		return err
	}
	return c.Run(ctx)
}

// Wait is shorthand for WaitN(ctx, 1).
func (l *Limiter) Wait(ctx context.Context) error { return l.WaitN(ctx, 1) }

// WaitN takes n tokens, and waits until they are in the bucket or ctx
// ends. It returns:
//
//   - nil once the tokens are taken and their time has come;
//   - ctx.Err() if ctx is done on entry, ends while Redis is asked, or
//     ends while waiting (the tokens stay taken: giving them back would
//     cost another round trip, and a shared bucket cannot tell whether
//     others queued behind them);
//   - at once, without waiting or taking anything, an error matching
//     [ErrLimited] whose retry-after hint is the time until the tokens will
//     be in the bucket, if that is at or past ctx's deadline: the caller
//     keeps the rest of its time;
//   - an error not matching ErrLimited if n exceeds the burst.
//
// n ≤ 0 asks for nothing. While Redis is unavailable the fallback decides:
// FallbackLocal waits on the local share as ratelimit.Limiter.WaitN does,
// FailClosed refuses with [ErrUnavailable], FailOpen returns nil.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	c := &l.c
	if n > c.burst {
		return l.trivial(n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n <= 0 {
		return l.trivial(n)
	}
	ok, wait, err := c.ask(ctx, l.rkey, n, maxWait(ctx))
	if err == nil {
		if !c.counted(ok) {
			return &limitedError{after: wait}
		}
		return sleep(ctx, wait)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch c.mode {
	case FallbackLocal:
		return l.local.WaitN(ctx, n) // counted by l.local
	case FailClosed:
		c.stats.closed.Add(1)
		return unavailable(err)
	default:
		c.stats.open.Add(1)
		return nil
	}
}

// SetInstances changes the number of processes that share the limit, and
// so the local share FallbackLocal falls back to: Rate/n tokens a second,
// ceil(Burst/n) tokens. Call it when the deployment scales. It returns an
// error, and changes nothing, if n is not in [1, 1e6]; it does nothing in
// other modes.
func (l *Limiter) SetInstances(n int) error {
	if n < 1 || n > maxInstances {
		return fmt.Errorf("redisrate: Instances %d out of range [1,%d]", n, int(maxInstances))
	}
	if l.local == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rate, burst := share(l.c.rate, l.c.burst, n)
	if err := l.local.SetBurst(burst); err != nil {
		return fmt.Errorf("redisrate: local share of Instances %d: %w", n, err)
	}
	if err := l.local.SetRate(rate); err != nil {
		return fmt.Errorf("redisrate: local share of Instances %d: %w", n, err)
	}
	return nil
}

// Key returns the name of the bucket, Config.Key.
func (l *Limiter) Key() string { return l.key }

// Rate returns the shared rate, in events per second.
func (l *Limiter) Rate() float64 { return l.c.rate }

// Burst returns the size of the shared bucket.
func (l *Limiter) Burst() int { return l.c.burst }

// Breaker returns the breaker in front of Redis, for a registry, a status
// page, or an operator: ForceOpen sends every decision to the fallback
// without calling Redis, Reset closes it again.
func (l *Limiter) Breaker() *breaker.Breaker { return l.c.br }

// Metrics returns a snapshot of l's counters.
func (l *Limiter) Metrics() Metrics {
	var local ratelimit.Metrics
	if l.local != nil {
		local = l.local.Metrics()
	}
	return l.c.stats.snapshot(l.c.br, local)
}

// Registration is how package registry names the limiter. Its result is
// opaque outside this repository's modules.
func (l *Limiter) Registration() *obs.Slot {
	if l == nil {
		return nil
	}
	return &l.c.slot
}

// SharedLimitMetrics is the snapshot package registry takes of l: a rate
// limiter's, with what it says of Redis.
func (l *Limiter) SharedLimitMetrics() registry.SharedLimitMetrics {
	return l.c.shared(l.Metrics(), false)
}

// counted counts Redis's answer ok and returns it.
func (c *core) counted(ok bool) bool {
	if ok {
		c.stats.redisAdmitted.Add(1)
	} else {
		c.stats.redisRejected.Add(1)
	}
	return ok
}
