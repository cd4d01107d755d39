package redisrate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
)

// Keyed is a set of shared token buckets in Redis, one per key (a client,
// a tenant, a route), each as a [Limiter] of that Key would be: keys never
// share tokens, and every process using the same Redis and Prefix shares
// each key's bucket. A key's bucket lives in Redis only while it is not
// full: it expires when it has refilled, so Redis holds only the keys
// active within the last Burst/Rate.
//
// While Redis is unavailable, Config.Fallback decides, for FallbackLocal
// with a ratelimit.Keyed of this instance's share of each key's limit,
// remembering at most Config.MaxKeys keys.
//
// Keyed is a ratelimit.KeyedLimiter, which httpmw and grpcmw take
// unchanged (WithKeyedRateLimit). It keeps no key after a call returns,
// except in the local fallback, which copies it. A key must be 1 to
// [MaxKeyLen] bytes; any other is refused without asking Redis.
//
// A Keyed is made by [NewKeyed]. It is safe for concurrent use by multiple
// goroutines.
type Keyed struct {
	c     core
	local atomic.Pointer[ratelimit.Keyed] // FallbackLocal's share; nil in other modes
	mu    sync.Mutex                      // serializes SetInstances
	max   int                             // MaxKeys
	// The counts of the local fallbacks SetInstances replaced.
	oldAdmitted, oldRejected atomic.Uint64
}

// NewKeyed returns a keyed limiter in the Redis of client, or an error
// naming the first invalid field of cfg, which must leave Key empty. The
// client is checked as by [New]. NewKeyed sends nothing to Redis.
func NewKeyed(client redis.UniversalClient, cfg Config) (*Keyed, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	k := &Keyed{max: cfg.MaxKeys}
	if err := k.c.init(client, cfg); err != nil {
		return nil, err
	}
	if cfg.Fallback == FallbackLocal {
		if err := k.setLocal(cfg.Instances); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func (k *Keyed) setLocal(instances int) error {
	rate, burst := share(k.c.rate, k.c.burst, instances)
	local, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{
		Config:  ratelimit.Config{Rate: rate, Burst: burst},
		MaxKeys: k.max,
	})
	if err != nil {
		return fmt.Errorf("redisrate: local share of Instances %d: %w", instances, err)
	}
	if old := k.local.Swap(local); old != nil {
		m := old.Metrics()
		k.oldAdmitted.Add(m.Allowed)
		k.oldRejected.Add(m.Limited)
	}
	return nil
}

// Allow reports whether an event for key may happen now, and if so takes
// a token from key's bucket. It returns false for an invalid key.
func (k *Keyed) Allow(key string) bool {
	c := &k.c
	if validKey(key) != nil {
		c.stats.invalid.Add(1)
		return false
	}
	ok, _, err := c.ask(context.Background(), redisKey(c.prefix, key), 1, 0)
	if err == nil {
		return c.counted(ok)
	}
	switch c.mode {
	case FallbackLocal:
		return k.local.Load().Allow(key) // counted by the local Keyed
	case FailClosed:
		c.stats.closed.Add(1)
		return false
	default:
		c.stats.open.Add(1)
		return true
	}
}

// Try takes n tokens from key's bucket if it holds them, and returns nil.
// If not, it takes nothing and returns an error matching [ErrLimited] (and
// seawall.ErrRejected) whose retry-after hint is the time until key's
// bucket will hold n tokens, rounded up to the microsecond. An invalid key,
// or n over the burst, is an error that does not match ErrLimited, and
// nothing is sent to Redis. n ≤ 0 asks for nothing and returns nil. While
// Redis is unavailable the fallback decides, as for [Limiter.Try].
func (k *Keyed) Try(key string, n int) error {
	c := &k.c
	if err := validKey(key); err != nil {
		c.stats.invalid.Add(1)
		return err
	}
	if n <= 0 {
		c.stats.redisAdmitted.Add(1)
		return nil
	}
	if n > c.burst {
		c.stats.invalid.Add(1)
		return errExceedsBurst(n, c.burst)
	}
	ok, wait, err := c.ask(context.Background(), redisKey(c.prefix, key), n, 0)
	if err == nil {
		if c.counted(ok) {
			return nil
		}
		return &limitedError{after: wait}
	}
	switch c.mode {
	case FallbackLocal:
		return k.local.Load().Try(key, n) // counted by the local Keyed
	case FailClosed:
		c.stats.closed.Add(1)
		return unavailable(err)
	default:
		c.stats.open.Add(1)
		return nil
	}
}

// SetInstances changes the number of processes that share the limit, and
// so FallbackLocal's share, as [Limiter.SetInstances] does. The local
// buckets start over full. It does nothing in other modes.
func (k *Keyed) SetInstances(n int) error {
	if n < 1 || n > maxInstances {
		return fmt.Errorf("redisrate: Instances %d out of range [1,%d]", n, int(maxInstances))
	}
	if k.local.Load() == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.setLocal(n)
}

// Rate returns the shared rate of each key's bucket, in events per second.
func (k *Keyed) Rate() float64 { return k.c.rate }

// Burst returns the size of each key's shared bucket.
func (k *Keyed) Burst() int { return k.c.burst }

// Breaker returns the breaker in front of Redis (see [Limiter.Breaker]).
func (k *Keyed) Breaker() *breaker.Breaker { return k.c.br }

// Registration is how package registry names the limiter. Its result is
// opaque outside this repository's modules.
func (k *Keyed) Registration() *obs.Slot {
	if k == nil {
		return nil
	}
	return &k.c.slot
}

// SharedLimitMetrics is the snapshot package registry takes of k (see
// [Limiter.SharedLimitMetrics]).
func (k *Keyed) SharedLimitMetrics() registry.SharedLimitMetrics {
	return k.c.shared(k.Metrics(), true)
}

// Metrics returns a snapshot of k's counters, over all keys.
func (k *Keyed) Metrics() Metrics {
	var local ratelimit.Metrics
	if l := k.local.Load(); l != nil {
		local = l.Metrics()
	}
	local.Allowed += k.oldAdmitted.Load()
	local.Limited += k.oldRejected.Load()
	return k.c.stats.snapshot(k.c.br, local)
}
