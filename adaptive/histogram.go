package adaptive

import (
	"math/bits"
	"sync/atomic"
)

// A histogram counts latencies in log-linear buckets: 16 buckets for each
// power of two, so that a bucket is at most 1/16 (6%) wide relative to its
// values, and a value is read back as its bucket's midpoint, within 3%.
// Latencies up to 15ns have a bucket each; the last bucket holds everything
// from 2^40ns (18 minutes) up. Recording a latency is one atomic add; only
// the limit's updater reads and drains the buckets.
//
// The counters are not padded: concurrent calls of similar latencies add to
// the same few words, the price of one add instead of a per-P histogram the
// updater would have to sum.
type histogram struct {
	n [nBuckets]atomic.Uint64
}

const (
	subBits  = 4
	subCount = 1 << subBits
	maxShift = 36 // values of 2^40ns and more go to the last bucket
	nBuckets = (maxShift + 2) << subBits
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

// midpoint returns the value a sample in bucket i is read back as.
func midpoint(i int) float64 {
	if i < subCount {
		return float64(i)
	}
	shift := i>>subBits - 1
	low := uint64(subCount|i&(subCount-1)) << shift
	return float64(low) + float64(uint64(1)<<shift)/2
}

// add records a latency of ns nanoseconds.
func (h *histogram) add(ns int64) { h.n[bucketOf(ns)].Add(1) }

// count returns the number of samples recorded since the last drain.
func (h *histogram) count() uint64 {
	var n uint64
	for i := range h.n {
		n += h.n[i].Load()
	}
	return n
}

// drain empties the histogram into c, a scratch array, and returns the
// number of samples. Samples recorded while it runs are either in c or
// left for the next drain, never lost.
func (h *histogram) drain(c *[nBuckets]uint64) uint64 {
	var n uint64
	for i := range h.n {
		v := h.n[i].Load()
		if v != 0 {
			v = h.n[i].Swap(0)
		}
		c[i] = v
		n += v
	}
	return n
}

// statistic returns the mean of the n samples counted in c if p is 0, and
// otherwise their p-quantile, in nanoseconds. n must not be 0.
func statistic(c *[nBuckets]uint64, n uint64, p float64) float64 {
	if p == 0 {
		var sum float64
		for i, v := range c {
			if v != 0 {
				sum += float64(v) * midpoint(i)
			}
		}
		return sum / float64(n)
	}
	rank := uint64(p * float64(n)) // samples strictly below the quantile
	var seen uint64
	for i, v := range c {
		seen += v
		if seen > rank {
			return midpoint(i)
		}
	}
	return midpoint(nBuckets - 1)
}
