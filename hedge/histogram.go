package hedge

import (
	"math/bits"
	"sync/atomic"
)

// A histogram counts latencies in log-linear buckets, as package adaptive's
// does (the idea is copied, not imported: no policy imports another): 16
// buckets for each power of two, so that a bucket is at most 1/16 (6%) wide
// relative to its values, and a value is read back as its bucket's upper
// bound, within 6% above it (the upper bound, so that a hedge delay is never
// below the latency it stands for). The last bucket holds everything from
// 2^40ns (18 minutes) up.
//
// Recording a latency is two atomic adds (its bucket and the total). Every
// recomputeEvery-th latency, the goroutine that recorded it recomputes the
// quantile and stores it in an atomic that every call reads; every
// decayEvery-th latency it halves the counts first, so that old latencies
// weigh half as much as each newer batch and the quantile follows the
// dependency. Concurrent adds during a halving are kept, whole or halved,
// never lost or doubled.
type histogram struct {
	n     [nBuckets]atomic.Uint64
	total atomic.Uint64 // latencies recorded, ever
	q     atomic.Int64  // the quantile, in ns; 0 until minSamples are seen
	p     float64
}

const (
	subBits  = 4
	subCount = 1 << subBits
	maxShift = 36 // values of 2^40ns and more go to the last bucket
	nBuckets = (maxShift + 2) << subBits

	minSamples     = 128  // latencies seen before the quantile is used
	recomputeEvery = 64   // latencies between recomputations
	decayEvery     = 1024 // latencies between halvings
)

// bucketOf returns the index of the bucket that counts ns nanoseconds.
func bucketOf(ns int64) int {
	if ns < subCount {
		return int(max(ns, 0))
	}
	shift := bits.Len64(uint64(ns)) - subBits - 1
	if shift > maxShift {
		return nBuckets - 1
	}
	return (shift+1)<<subBits | int(uint64(ns)>>shift&(subCount-1))
}

// upper returns the value a sample in bucket i is read back as: the least
// value of the next bucket.
func upper(i int) int64 {
	if i < subCount {
		return int64(i) + 1
	}
	shift := i>>subBits - 1
	low := uint64(subCount|i&(subCount-1)) << shift
	return int64(low + uint64(1)<<shift)
}

// add records a latency of ns nanoseconds.
func (h *histogram) add(ns int64) {
	h.n[bucketOf(ns)].Add(1)
	t := h.total.Add(1)
	if t%recomputeEvery != 0 || t < minSamples {
		return
	}
	if t%decayEvery == 0 {
		for i := range h.n {
			if v := h.n[i].Load(); v > 1 {
				h.n[i].Add(^(v/2 - 1)) // subtract v/2
			}
		}
	}
	h.q.Store(h.quantile())
}

// quantile returns the p-quantile of the counts, in nanoseconds.
func (h *histogram) quantile() int64 {
	var c [nBuckets]uint64
	var n uint64
	for i := range h.n {
		c[i] = h.n[i].Load()
		n += c[i]
	}
	if n == 0 {
		return 0
	}
	rank := uint64(h.p * float64(n)) // samples strictly below the quantile
	var seen uint64
	for i, v := range c {
		seen += v
		if seen > rank {
			return upper(i)
		}
	}
	return upper(nBuckets - 1)
}
