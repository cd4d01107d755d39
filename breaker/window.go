package breaker

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall/internal/shard"
)

// The windows count the calls of the current closed period. Fast successes
// are only counted, lock-free, in per-shard counters; failures and slow calls
// ("events") are recorded under Breaker.mu, where the rate rules are
// evaluated. So a window is read only when an event arrives, and only then
// does it sum the shards.

// countWindow is the window of the last size calls. Every call of the closed
// period has an index: the number of calls recorded so far in the period,
// counted as the fast successes (sum of the shards, minus their sum when the
// period began) plus the events. Events are kept with their index in a ring;
// the window is the events whose index lies within the last size calls.
type countWindow struct {
	size     uint64
	base     uint64   // fast successes when the period began
	events   uint64   // events recorded in the period
	ring     []uint64 // event index<<2 | failed<<1 | slow, oldest at head
	head, n  int
	failures uint64 // among the events in the ring
	slow     uint64
}

func (w *countWindow) reset(fastSuccesses uint64) {
	*w = countWindow{size: w.size, base: fastSuccesses, ring: w.ring}
}

// record adds an event, given the current sum of fast successes, and returns
// the calls, failures and slow calls in the window.
func (w *countWindow) record(fastSuccesses uint64, failed, slow bool) (calls, failures, slowCalls uint64) {
	w.events++
	idx := fastSuccesses - w.base + w.events
	for w.n > 0 {
		e := w.ring[w.head]
		if e>>2+w.size > idx {
			break
		}
		w.failures -= e >> 1 & 1
		w.slow -= e & 1
		w.head = (w.head + 1) % len(w.ring)
		w.n--
	}
	if w.n == len(w.ring) { // grow; at most size entries are ever kept
		ring := make([]uint64, min(max(2*len(w.ring), 16), int(w.size)))
		for i := range w.n {
			ring[i] = w.ring[(w.head+i)%len(w.ring)]
		}
		w.ring, w.head = ring, 0
	}
	e := idx << 2
	if failed {
		e |= 2
		w.failures++
	}
	if slow {
		e |= 1
		w.slow++
	}
	w.ring[(w.head+w.n)%len(w.ring)] = e
	w.n++
	return min(idx, w.size), w.failures, w.slow
}

// counts returns the calls, failures and slow calls in the window, given the
// current sum of fast successes, without recording anything.
func (w *countWindow) counts(fastSuccesses uint64) (calls, failures, slowCalls uint64) {
	idx := fastSuccesses - w.base + w.events
	failures, slowCalls = w.failures, w.slow
	for i := range w.n { // events that have left the window, oldest first
		e := w.ring[(w.head+i)%len(w.ring)]
		if e>>2+w.size > idx {
			break
		}
		failures -= e >> 1 & 1
		slowCalls -= e & 1
	}
	return min(idx, w.size), failures, slowCalls
}

// timeWindow is the window of the last nb buckets of width ns each. Fast
// successes go to per-shard bucket words (bucket epoch in the high 32 bits,
// count in the low 32), updated with a CAS; events go to buckets guarded by
// Breaker.mu.
type timeWindow struct {
	width  int64
	nb     int64
	stride int64           // words per shard, rounded up to a cache line
	words  []atomic.Uint64 // shard i's bucket k is words[i*stride+k]

	ev         []eventBucket // guarded by Breaker.mu
	startEpoch int64         // the bucket in which the closed period began
	base       uint64        // fast successes in startEpoch before it began
}

type eventBucket struct {
	epoch                 int64
	calls, failures, slow uint64
}

func newTimeWindow(window time.Duration, buckets int) *timeWindow {
	w := &timeWindow{
		width:  int64(window) / int64(buckets),
		nb:     int64(buckets),
		stride: (int64(buckets) + 7) &^ 7,
		ev:     make([]eventBucket, buckets),
	}
	w.words = make([]atomic.Uint64, int64(min(runtime.GOMAXPROCS(0), 64))*w.stride)
	for i := range w.ev {
		w.ev[i].epoch = -1
	}
	return w
}

// add counts a fast success at time now in the calling P's words.
// Lock-free; the words are updated with a CAS, so a goroutine that moves to
// another P, or Ps beyond the shards, share words safely.
func (w *timeWindow) add(now int64) {
	i := int64(shard.Pin())
	shard.Unpin()
	shards := int64(len(w.words)) / w.stride
	if i >= shards {
		i %= shards
	}
	e := now / w.width
	word := &w.words[i*w.stride+e%w.nb]
	tag := uint32(e) // the bucket's epoch, modulo 2^32, tags the word
	for {
		old := word.Load()
		next := uint64(tag)<<32 | 1
		if uint32(old>>32) == tag {
			if uint32(old) == math.MaxUint32 {
				return // saturated
			}
			next = old + 1
		}
		if word.CompareAndSwap(old, next) {
			return
		}
	}
}

// successesAt sums the fast successes of bucket epoch e over the shards.
func (w *timeWindow) successesAt(e int64) uint64 {
	var n uint64
	for i := int64(0); i < int64(len(w.words)); i += w.stride {
		if v := w.words[i+e%w.nb].Load(); uint32(v>>32) == uint32(e) {
			n += uint64(uint32(v))
		}
	}
	return n
}

func (w *timeWindow) reset(now int64) {
	w.startEpoch = now / w.width
	w.base = w.successesAt(w.startEpoch)
	for i := range w.ev {
		w.ev[i] = eventBucket{epoch: -1}
	}
}

// record adds an event at time now and returns the calls, failures and slow
// calls in the window.
func (w *timeWindow) record(now int64, failed, slow bool) (calls, failures, slowCalls uint64) {
	e := now / w.width
	b := &w.ev[e%w.nb]
	if b.epoch != e {
		*b = eventBucket{epoch: e}
	}
	b.calls++
	if failed {
		b.failures++
	}
	if slow {
		b.slow++
	}
	return w.counts(now)
}

// counts returns the calls, failures and slow calls in the window at time
// now, without recording anything.
func (w *timeWindow) counts(now int64) (calls, failures, slowCalls uint64) {
	e := now / w.width
	for k := max(e-w.nb+1, w.startEpoch); k <= e; k++ {
		s := w.successesAt(k)
		if k == w.startEpoch {
			s -= min(s, w.base)
		}
		calls += s
		if b := &w.ev[k%w.nb]; b.epoch == k {
			calls += b.calls
			failures += b.failures
			slowCalls += b.slow
		}
	}
	return calls, failures, slowCalls
}
