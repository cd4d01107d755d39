package ratelimit

import (
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// Keyed is a set of token buckets, one per key (a client, a tenant, a
// route), each as a [Limiter] configured by KeyedConfig.Config would be:
// keys never share tokens.
//
// Its memory is bounded. A key's whole state is its TAT, one int64 (see
// [Limiter]), kept in a map beside the key; a key seen for the first time
// starts with a full bucket. A key whose bucket has refilled fully (its TAT
// is past: it has been idle for at least the time its bucket takes to
// refill, Burst/Rate) is in exactly the state of a key never seen, so
// forgetting it changes nothing: Keyed drops such idle keys whenever it
// needs room, and [Keyed.Prune] drops them all. At most MaxKeys keys are
// remembered. When a new key arrives and no idle key can make room, Keyed
// forgets the key nearest to a full bucket among a few sampled (a random
// sample of the map), which starts over with a full bucket if it returns:
// only a flood of more than MaxKeys active keys can make Keyed forget a
// key that is not idle, and then memory stays bounded while the forgotten
// keys get at most one extra bucket each.
//
// The keys are spread over up to 64 shards by a seeded hash, each a map
// under its own mutex, holding MaxKeys/shards keys at most (and at least
// 16, unless MaxKeys is below 32), so concurrent callers rarely contend.
// Size MaxKeys above the number of keys active at once (used within the
// last Burst/Rate): a shard forgets an active key only when it is full of
// them. A call reads the clock once, and allocates only
// when it remembers a new key (a copy of the key, so that a key sliced from
// a larger buffer does not retain it) or returns a refusal error.
//
// A Keyed is made by [NewKeyed]. It is safe for concurrent use by multiple
// goroutines.
type Keyed struct {
	p      *params
	epoch  time.Time // the clock is read as time.Since(epoch)
	seed   maphash.Seed
	mask   uint64 // shards - 1
	per    int    // the most keys a shard holds
	shards []keyShard
	counts shard.Counters

	slot obs.Slot // the registry that named this keyed limiter, if any
}

// keyShard is one shard of a Keyed's keys, padded to its own cache lines
// so that shards locked by different goroutines do not share one.
//
// A key's TAT is kept in a slot of tats, which m maps the key to, so that
// a call on a known key looks the key up once and updates its slot in
// place (a map[string]int64 would hash the key twice: to read, to write).
// Slots of forgotten keys are reused.
type keyShard struct {
	mu   sync.Mutex
	m    map[string]int32 // key → its slot in tats
	tats []int64          // TATs, ns since the epoch
	free []int32          // slots of tats not in use
	// minTAT is at most every TAT in use: while now < minTAT no key is
	// idle, and looking for idle keys would be a waste.
	minTAT int64
	_      [64 - (8+8+24+24+8)%64]byte
}

const (
	maxShards    = 64
	minShardKeys = 16
)

// sampleSize is how many keys a full shard with no idle key samples to
// choose the one to forget.
const sampleSize = 8

// NewKeyed returns a keyed limiter configured by cfg, or an error naming
// the first invalid field of cfg.
func NewKeyed(cfg KeyedConfig) (*Keyed, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Shards: a power of two, up to 64, each of at least minShardKeys keys
	// (but one shard for fewer), so that an uneven spread of keys over
	// shards rarely fills one while the others have room.
	n := 1 << (bits.Len(uint(max(1, min(maxShards, cfg.MaxKeys/minShardKeys)))) - 1)
	k := &Keyed{
		p:      newParams(cfg.Rate, cfg.Burst),
		epoch:  time.Now(),
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		per:    cfg.MaxKeys / n,
		shards: make([]keyShard, n),
	}
	for i := range k.shards {
		k.shards[i].m = make(map[string]int32)
		k.shards[i].minTAT = math.MaxInt64
	}
	k.counts.Init()
	return k, nil
}

// Allow reports whether an event for key may happen now, and if so takes a
// token from key's bucket. It allocates nothing, unless it remembers a new
// key.
func (k *Keyed) Allow(key string) bool {
	if k.p.inf {
		k.counts.Add(cAllowed)
		return true
	}
	ok, _ := k.take(key, 1)
	return ok
}

// Try takes n tokens from key's bucket if it holds them, and returns nil.
// If not, it takes nothing and returns an error matching [ErrLimited] (and
// seawall.ErrRejected) whose retry-after hint is the time until key's
// bucket will hold n tokens. If n exceeds the burst it returns an error that
// does not match ErrLimited. n ≤ 0 asks for nothing and returns nil.
func (k *Keyed) Try(key string, n int) error {
	if k.p.inf || n <= 0 {
		k.counts.Add(cAllowed)
		return nil
	}
	if n > k.p.burst {
		k.counts.Add(cLimited)
		return errExceedsBurst(n, k.p.burst)
	}
	if ok, delay := k.take(key, n); !ok {
		return limited(delay)
	}
	return nil
}

// take takes n tokens, 0 < n ≤ burst, from key's bucket at the current
// time, and counts the outcome.
func (k *Keyed) take(key string, n int) (bool, int64) {
	return k.takeSince(key, n, int64(time.Since(k.epoch)))
}

// takeSince is take with the clock read at now.
func (k *Keyed) takeSince(key string, n int, now int64) (bool, int64) {
	p := k.p
	s := &k.shards[maphash.String(k.seed, key)&k.mask]
	s.mu.Lock()
	slot, found := s.m[key]
	old := full
	if found {
		old = s.tats[slot]
	}
	tat := max(old, now) + int64(n)*p.interval
	if delay := tat - p.tau - now; delay > 0 {
		// now was read before the lock: a goroutine that waited for it,
		// or stalled, judges the bucket at a time past. Before refusing,
		// read the clock again (only a refusal pays it).
		if t := int64(time.Since(k.epoch)); t > now {
			now = t
			tat = max(old, now) + int64(n)*p.interval
			delay = tat - p.tau - now
		}
		if delay > 0 {
			s.mu.Unlock()
			k.counts.Add(cLimited)
			return false, delay
		}
	}
	if found {
		s.tats[slot] = tat
	} else {
		k.insert(s, key, tat, now)
	}
	s.mu.Unlock()
	k.counts.Add(cAllowed)
	return true, 0
}

// insert remembers a new key, making room in s if it is full. s.mu is held.
func (k *Keyed) insert(s *keyShard, key string, tat, now int64) {
	if len(s.m) >= k.per && now >= s.minTAT {
		s.prune(now)
	}
	if len(s.m) >= k.per {
		// No idle key: forget the sampled key nearest to a full bucket.
		// Map iteration starts at a random place.
		var victim string
		least, i := int64(math.MaxInt64), 0
		for key, slot := range s.m {
			if t := s.tats[slot]; t < least {
				victim, least = key, t
			}
			if i++; i == sampleSize {
				break
			}
		}
		s.forget(victim)
	}
	var slot int32
	if n := len(s.free); n > 0 {
		slot, s.free = s.free[n-1], s.free[:n-1]
		s.tats[slot] = tat
	} else {
		slot = int32(len(s.tats))
		s.tats = append(s.tats, tat)
	}
	s.m[strings.Clone(key)] = slot
	s.minTAT = min(s.minTAT, tat)
}

// forget forgets key, which s holds. s.mu is held.
func (s *keyShard) forget(key string) {
	s.free = append(s.free, s.m[key])
	delete(s.m, key)
}

// prune forgets the idle keys of s, those whose bucket is full at now, and
// returns how many it forgot. s.mu is held.
func (s *keyShard) prune(now int64) int {
	n := len(s.m)
	least := int64(math.MaxInt64)
	for key, slot := range s.m {
		if t := s.tats[slot]; t <= now {
			s.free = append(s.free, slot)
			delete(s.m, key)
		} else {
			least = min(least, t)
		}
	}
	s.minTAT = least
	return n - len(s.m)
}

// Prune forgets every idle key, one whose bucket has refilled fully, and
// returns how many it forgot; this changes no key's behaviour (see [Keyed]).
// Keyed makes room this way by itself when a shard is full; call Prune, say
// periodically, to give the memory of keys gone idle back sooner. It locks
// one shard at a time.
func (k *Keyed) Prune() int {
	now := int64(time.Since(k.epoch))
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		if now >= s.minTAT {
			n += s.prune(now)
		}
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of keys remembered, at most MaxKeys. It locks one
// shard at a time.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Rate returns the rate of each key's bucket, in events per second; +Inf
// for no limit.
func (k *Keyed) Rate() float64 { return k.p.rate }

// Burst returns the size of each key's bucket.
func (k *Keyed) Burst() int { return k.p.burst }

// Metrics returns a snapshot of k's counters, over all keys.
func (k *Keyed) Metrics() Metrics {
	return Metrics{Allowed: k.counts.Load(cAllowed), Limited: k.counts.Load(cLimited)}
}

// Registration is how package registry names the keyed limiter. Its result
// is opaque outside this module.
func (k *Keyed) Registration() *obs.Slot { return &k.slot }
