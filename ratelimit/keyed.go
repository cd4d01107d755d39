package ratelimit

import (
	"hash/maphash"
	"math"
	"math/bits"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/seawall-go/seawall/clock"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/internal/shard"
)

// Keyed is a set of token buckets, one per key (a client, a tenant, a
// route), each as a [Limiter] configured by KeyedConfig.Config would be:
// keys never share tokens.
//
// Its memory is bounded. A key's whole state is its TAT, one int64 (see
// [Limiter]), kept in an entry beside the key; a key seen for the first
// time starts with a full bucket. A key whose bucket has refilled fully (its
// TAT is past: it has been idle for at least the time its bucket takes to
// refill, Burst/Rate) is in exactly the state of a key never seen, so
// forgetting it changes nothing: Keyed drops such idle keys whenever it
// needs room, and [Keyed.Prune] drops them all. At most MaxKeys keys are
// remembered. When a new key arrives and no idle key can make room, Keyed
// forgets the key nearest to a full bucket among a few sampled (from a
// random place), which starts over with a full bucket if it returns: only a
// flood of more than MaxKeys active keys can make Keyed forget a key that
// is not idle, and then memory stays bounded while the forgotten keys get
// at most one extra bucket each.
//
// The keys are spread over up to 64 shards by a seeded hash, each an
// open-addressing table, holding MaxKeys/shards keys at most (and at least
// 16, unless MaxKeys is below 32). A call on a key already remembered takes
// no lock: it hashes the key once (the hash picks the shard and the place
// in its table), reads the clock once and updates the key's TAT with a
// compare-and-swap, as a [Limiter] does; each key's entry has a cache line
// of its own, so callers on different keys do not slow each other down.
// Remembering and forgetting keys takes the shard's mutex. Size MaxKeys
// above the number of keys active at once (used within the last
// Burst/Rate): a shard forgets an active key only when it is full of them.
// A call allocates only when it remembers a new key (one 64-byte entry,
// holding a copy of the key if it is at most 28 bytes long, so that a key
// sliced from a larger buffer does not retain it; a longer key is copied
// apart) or returns a refusal error.
type Keyed struct {
	keyedState
	// Pad Keyed to whole cache lines: the allocator then places it at a
	// multiple of 64 bytes (a size class that is a multiple of 64, see
	// entry), so the fields every call reads share no line with another
	// object's data that some other goroutine may be writing.
	_ [(64 - unsafe.Sizeof(keyedState{})%64) % 64]byte
}

type keyedState struct {
	// Read by every call, written only by NewKeyed.
	p      params        // a copy: no pointer to chase, on lines of its own
	epoch  time.Time     // the clock is read as time.Since(epoch)
	clock  *clock.Coarse // if set, read instead, and epoch is its start
	seed   maphash.Seed
	mask   uint64     // shards - 1
	shards []keyShard // see keyShard for their layout
	counts shard.Counters

	per  int      // the most keys a shard holds
	slot obs.Slot // the registry that named this keyed limiter, if any
}

// keyShard is one shard of a Keyed's keys. A call on a known key only
// reads it (tab), and takes mu only to remember or forget keys.
//
// Its data is padded to 256 bytes, enough on both sides whatever the
// array's alignment: Go places an array of pointerful elements above 512
// bytes 8 bytes into its block (a malloc header comes first), so padding
// that assumes 64- or 128-byte alignment of element 0 would lie. With at
// most 192 bytes of data in each 256-byte element, the data of two shards
// are at least 64 bytes apart, so never on one cache line, at any alignment
// (TestKeyedLayout).
type keyShard struct {
	shardState
	_ [256 - unsafe.Sizeof(shardState{})]byte
}

type shardState struct {
	tab atomic.Pointer[table] // read without the lock; replaced under mu
	mu  sync.Mutex            // serialises changes to the keys: insert, forget, resize
	n   int                   // keys remembered; under mu
	// minTAT is at most every TAT in use (TATs only grow): while now <
	// minTAT no key is idle, and looking for idle keys would be a waste.
	// Under mu.
	minTAT int64
	// soon are the entries of least seen TAT found by the last sweep
	// (prune), nsoon of them in increasing order of seen, and rest is at
	// most the TAT of every other entry: a full shard forgets the next
	// of them that is idle instead of sweeping again, so that keys going
	// idle one by one (a steady flood of new keys) cost a sweep per
	// soonSize keys, not one per key. Under mu.
	soon  [soonSize]*entry
	nsoon int
	rest  int64
}

const soonSize = 8

// entry is one remembered key and its bucket: the key, its hash, and its
// TAT, updated by compare-and-swap without a lock.
//
// An entry is 64 bytes, a size class that the allocator lays out at
// multiples of 64 bytes (objects of up to 512 bytes carry no header), so
// each entry owns one cache line: goroutines taking tokens for different
// keys never write one line, however the allocator packed their entries
// (TestKeyedLayout). A key of up to 28 bytes is copied into the entry's
// own buf, so a new key costs one allocation of 64 bytes; a longer key is
// copied apart.
type entry struct {
	tat atomic.Int64 // ns since the epoch, or dead once forgotten
	// seen is tat as last read under the shard's mu: TATs only grow, so
	// while seen > now the key is not idle, which a sweep for idle keys
	// reads without an atomic load (cheap, and cheap under -race too).
	// Under the shard's mu.
	seen int64
	key  string // a copy, in buf if it fits
	hash uint32 // the top 32 bits of the maphash of key with the Keyed's seed
	buf  [inlineKey]byte
}

const inlineKey = 28

// dead is the TAT of a forgotten entry: a caller that finds it, having
// looked the key up before it was forgotten, looks again under the lock.
const dead int64 = math.MinInt64

func newEntry(h uint64, key string, tat int64) *entry {
	e := &entry{hash: uint32(h >> 32), seen: tat}
	// A plain store: e is not yet published (that is the slot's atomic
	// store), and an atomic one would cost more under -race.
	*(*int64)(unsafe.Pointer(&e.tat)) = tat
	if len(key) <= inlineKey {
		n := copy(e.buf[:], key)
		// The string points into e itself: it lives as long as e, and
		// buf is never written again.
		e.key = unsafe.String(&e.buf[0], n)
	} else {
		e.key = strings.Clone(key)
	}
	return e
}

// table is an open-addressing hash table of a shard's entries, with
// linear probing from hash>>shift: found by the hash that chose the
// shard, so a call hashes its key once. Readers probe it with atomic loads
// and no lock; writers hold the shard's mu. A reader may miss an entry that
// a writer is moving or has just added (deletion shifts entries back, so
// there are no tombstones), and then looks again under the lock: a miss
// without the lock is only a hint, a hit is a hit (the key compares equal).
// At most 3/4 of the slots are used, so a probe ends at a nil slot soon.
type table struct {
	slots []slot        // a power of two of them, 64-byte aligned
	shift uint          // 64 - log2(len(slots)), at most 61
	_     [64 - 32]byte // the table owns its line (64-byte size class)
}

// slot holds an *entry, or nil. Callers without the shard's mu load it
// atomically; writers hold mu and store it atomically, and read it plainly
// (get): only they write it. (A plain read costs less than an atomic load,
// under -race especially, where a conversion from unsafe.Pointer is
// checked too: sweeps and evictions read many slots.)
type slot struct{ p *entry }

func (s *slot) load() *entry { return (*entry)(atomic.LoadPointer(s.ptr())) }
func (s *slot) get() *entry  { return s.p }
func (s *slot) set(e *entry) { atomic.StorePointer(s.ptr(), unsafe.Pointer(e)) }
func (s *slot) ptr() *unsafe.Pointer {
	return (*unsafe.Pointer)(unsafe.Pointer(&s.p))
}

// home is the slot where e's probe sequence starts.
func (t *table) home(e *entry) uint64 { return uint64(e.hash) >> (t.shift - 32) }

const minSlots = 8

func newTable(size int) *table {
	return &table{slots: alignedSlots(size), shift: uint(64 - bits.Len(uint(size)) + 1)}
}

// alignedSlots returns n slots starting on a 64-byte boundary and owning
// their cache lines. A block of n ≤ 64 pointers, a power of two, is aligned
// by its size class; a larger one starts 8 bytes in (after a malloc
// header), so it is over-allocated by a line and sliced from the first
// aligned slot.
func alignedSlots(n int) []slot {
	s := make([]slot, n)
	if uintptr(unsafe.Pointer(&s[0]))%64 == 0 {
		return s
	}
	s = make([]slot, n+8)
	off := int((64 - uintptr(unsafe.Pointer(&s[0]))%64) % 64 / 8)
	return s[off : off+n : off+n]
}

// find returns key's entry, or nil if it sees none.
func (t *table) find(h uint64, key string) *entry {
	m := uint64(len(t.slots) - 1)
	i, tag := h>>t.shift, uint32(h>>32)
	for range len(t.slots) {
		e := t.slots[i].load()
		if e == nil {
			return nil
		}
		if e.hash == tag && e.key == key {
			return e
		}
		i = (i + 1) & m
	}
	return nil
}

// findLocked is find for a caller holding the shard's mu: it sees every
// entry.
func (t *table) findLocked(h uint64, key string) *entry {
	m := uint64(len(t.slots) - 1)
	i, tag := h>>t.shift, uint32(h>>32)
	for {
		e := t.slots[i].get()
		if e == nil {
			return nil
		}
		if e.hash == tag && e.key == key {
			return e
		}
		i = (i + 1) & m
	}
}

// put stores e, whose key t does not hold, in the first free slot of its
// probe sequence. The shard's mu is held.
func (t *table) put(e *entry) {
	m := uint64(len(t.slots) - 1)
	i := t.home(e)
	for t.slots[i].get() != nil {
		i = (i + 1) & m
	}
	t.slots[i].set(e)
}

// removeEntry removes e, which t holds. The shard's mu is held.
func (t *table) removeEntry(e *entry) {
	m := uint64(len(t.slots) - 1)
	i := t.home(e)
	for t.slots[i].get() != e {
		i = (i + 1) & m
	}
	t.remove(i)
}

// remove empties slot i, shifting back the entries of the probe run after
// it that may move (backward-shift deletion). The shard's mu is held.
func (t *table) remove(i uint64) {
	m := uint64(len(t.slots) - 1)
	for j := (i + 1) & m; ; j = (j + 1) & m {
		e := t.slots[j].get()
		if e == nil {
			break
		}
		// e may fill the hole at i if i lies on its probe path, from
		// its home to j.
		if (j-t.home(e))&m >= (j-i)&m {
			t.slots[i].set(e)
			i = j
		}
	}
	t.slots[i].set(nil)
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
	k := &Keyed{keyedState: keyedState{
		p:      *newParams(cfg.Rate, cfg.Burst),
		epoch:  time.Now(),
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		per:    cfg.MaxKeys / n,
		shards: make([]keyShard, n),
	}}
	for i := range k.shards {
		s := &k.shards[i]
		s.tab.Store(newTable(minSlots))
		s.minTAT, s.rest = math.MaxInt64, math.MaxInt64
	}
	if c := cfg.Clock; c != nil {
		k.clock, k.epoch = c, c.Start()
	}
	k.counts.Init()
	return k, nil
}

// now reads the clock: nanoseconds since the epoch, from the coarse clock
// if the Config named one and it runs, else from the runtime's.
func (k *Keyed) now() int64 {
	if t, ok := k.coarse(); ok {
		return t
	}
	return int64(time.Since(k.epoch))
}

// coarse is the first half of now, for take to write now out, as
// [Limiter.coarse] is: now does not fit the inliner's budget.
func (k *Keyed) coarse() (int64, bool) {
	if c := k.clock; c != nil {
		t, ok := c.Read()
		return int64(t), ok
	}
	return 0, false
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
// time, and counts the outcome. A known key costs one hash, a probe of its
// shard's table, one clock read and one CAS; no lock.
func (k *Keyed) take(key string, n int) (bool, int64) {
	now, ok := k.coarse() // k.now(), written out (see coarse)
	if !ok {
		now = int64(time.Since(k.epoch))
	}
	return k.takeSince(key, n, now)
}

// takeSince is take with the clock read at now.
func (k *Keyed) takeSince(key string, n int, now int64) (bool, int64) {
	h := maphash.String(k.seed, key)
	s := &k.shards[h&k.mask]
	if e := s.tab.Load().find(h, key); e != nil {
		if ok, delay, live := k.takeFrom(e, n, now); live {
			return ok, delay
		}
	}
	return k.takeLocked(s, h, key, n, now)
}

// takeFrom takes n tokens from e's bucket at now, and counts the outcome;
// it reports !live, and does nothing, if e has been forgotten.
func (k *Keyed) takeFrom(e *entry, n int, now int64) (ok bool, delay int64, live bool) {
	cost := int64(n) * k.p.interval
	reread := false
	for {
		old := e.tat.Load()
		if old == dead {
			return false, 0, false
		}
		tat := max(old, now) + cost
		if delay := tat - k.p.tau - now; delay > 0 {
			// now may be from a time past: a goroutine that stalled, or
			// waited for the lock, judges the bucket late. Before refusing,
			// read the clock again (only a refusal pays it).
			if !reread {
				reread = true
				if t := k.now(); t > now {
					now = t
					continue
				}
			}
			k.counts.Add(cLimited)
			return false, delay, true
		}
		if e.tat.CompareAndSwap(old, tat) {
			k.counts.Add(cAllowed)
			return true, 0, true
		}
	}
}

// takeLocked is take for a key not found without the lock: it looks again
// under s.mu (the key may have just been added or moved), and remembers key
// if it is new.
func (k *Keyed) takeLocked(s *keyShard, h uint64, key string, n int, now int64) (bool, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.tab.Load().findLocked(h, key); e != nil {
		// Entries are forgotten only under s.mu: e is live.
		ok, delay, _ := k.takeFrom(e, n, now)
		return ok, delay
	}
	// A new key's bucket is full: it holds n ≤ burst tokens.
	k.insert(s, h, key, max(full, now)+int64(n)*k.p.interval, now)
	k.counts.Add(cAllowed)
	return true, 0
}

// insert remembers a new key, making room in s if it is full. s.mu is held.
func (k *Keyed) insert(s *keyShard, h uint64, key string, tat, now int64) {
	if s.n >= k.per && now >= s.minTAT && !s.forgetSoon(now) {
		s.prune(now)
	}
	if s.n >= k.per {
		s.evict()
	}
	t := s.tab.Load()
	if (s.n+1)*4 > len(t.slots)*3 {
		t = s.resize(len(t.slots) * 2)
	}
	t.put(newEntry(h, key, tat))
	s.n++
	s.minTAT, s.rest = min(s.minTAT, tat), min(s.rest, tat)
}

// evict forgets, of sampleSize keys sampled from a random slot on, the one
// nearest to a full bucket (the least TAT). s is not empty. s.mu is held.
func (s *keyShard) evict() {
	t := s.tab.Load()
	m := uint64(len(t.slots) - 1)
	var sample [sampleSize]*entry
	var at [sampleSize]uint64
	n := 0
	for i := rand.Uint64() & m; n < sampleSize && n < s.n; i = (i + 1) & m {
		if e := t.slots[i].get(); e != nil {
			sample[n], at[n] = e, i
			n++
		}
	}
	// The least TAT, reading few of them: take the least seen, which
	// bounds every TAT of the sample from below, and read its TAT; if it
	// has not grown, it is the least.
	for {
		v := 0
		for i := 1; i < n; i++ {
			if sample[i].seen < sample[v].seen {
				v = i
			}
		}
		e := sample[v]
		if tat := e.tat.Load(); tat != e.seen {
			e.seen = tat
			continue
		}
		// A store, not a CAS: a token taken meanwhile is forgotten with
		// the key, which starts over with a full bucket (see Keyed).
		e.tat.Store(dead)
		t.remove(at[v])
		s.n--
		return
	}
}

// forgetSoon forgets the first entry of soon that is idle at now, if any,
// and reports whether it did. s.mu is held.
func (s *keyShard) forgetSoon(now int64) bool {
	for s.nsoon > 0 {
		e := s.soon[0]
		copy(s.soon[:], s.soon[1:s.nsoon])
		s.nsoon--
		s.soon[s.nsoon] = nil
		tat := e.tat.Load()
		if tat == dead {
			continue // forgotten already
		}
		if tat > now || !e.tat.CompareAndSwap(tat, dead) {
			e.seen = e.tat.Load()
			s.rest = min(s.rest, e.seen)
			continue
		}
		s.tab.Load().removeEntry(e)
		s.n--
		s.minTAT = s.rest
		if s.nsoon > 0 {
			s.minTAT = min(s.minTAT, s.soon[0].seen)
		}
		return true
	}
	return false
}

// prune forgets the idle keys of s, those whose bucket is full at now, and
// returns how many it forgot. It notes the soonest to go idle of the others
// in s.soon. s.mu is held.
func (s *keyShard) prune(now int64) int {
	t := s.tab.Load()
	n := s.n
	s.soon, s.nsoon, s.rest = [soonSize]*entry{}, 0, math.MaxInt64
	for i := 0; i < len(t.slots); {
		e := t.slots[i].get()
		if e == nil {
			i++
			continue
		}
		if e.seen > now { // not idle, known without an atomic load
			s.keep(e)
			i++
			continue
		}
		// The CAS fails if a caller took tokens since the load: the key
		// is no longer idle.
		if tat := e.tat.Load(); tat > now || !e.tat.CompareAndSwap(tat, dead) {
			e.seen = e.tat.Load()
			s.keep(e)
			i++
			continue
		}
		// Removal may shift a later entry into slot i: look at it again.
		// Entries only shift back into the hole, which moves forward from
		// i, so none is skipped; one from the start of the table, past
		// the wrap, may be seen twice, which is harmless.
		t.remove(uint64(i))
		s.n--
	}
	s.minTAT = s.rest
	if s.nsoon > 0 {
		s.minTAT = min(s.minTAT, s.soon[0].seen)
	}
	if len(t.slots) > minSlots && s.n*8 < len(t.slots) {
		// Give back the memory of the slots: shrink to between a quarter
		// and half full.
		s.resize(max(minSlots, 1<<bits.Len(uint(max(1, 2*s.n-1)))))
	}
	return n - s.n
}

// keep notes e, which a sweep keeps, in soon if it is among the soonSize
// of least seen TAT so far, and the TAT it pushes out (or its own) in rest.
// A sweep may see an entry twice (see prune); soon then holds it twice,
// which is harmless. s.mu is held.
func (s *keyShard) keep(e *entry) {
	if s.nsoon == soonSize {
		last := s.soon[soonSize-1]
		if e.seen >= last.seen {
			s.rest = min(s.rest, e.seen)
			return
		}
		s.rest = min(s.rest, last.seen)
		s.nsoon--
	}
	i := s.nsoon
	for ; i > 0 && s.soon[i-1].seen > e.seen; i-- {
		s.soon[i] = s.soon[i-1]
	}
	s.soon[i] = e
	s.nsoon++
}

// resize moves s's entries to a new table of size slots and publishes it.
// Callers still probing the old one find the entries that were in it (the
// entries are shared); one that misses looks again under the lock. s.mu is
// held.
func (s *keyShard) resize(size int) *table {
	old, t := s.tab.Load(), newTable(size)
	for i := range old.slots {
		if e := old.slots[i].get(); e != nil {
			t.put(e)
		}
	}
	s.tab.Store(t)
	return t
}

// Prune forgets every idle key, one whose bucket has refilled fully, and
// returns how many it forgot; this changes no key's behaviour (see [Keyed]).
// Keyed makes room this way by itself when a shard is full; call Prune, say
// periodically, to give the memory of keys gone idle back sooner. It locks
// one shard at a time.
func (k *Keyed) Prune() int {
	now := k.now()
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
		n += s.n
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
