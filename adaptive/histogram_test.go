package adaptive

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestHistogramBuckets: every latency reads back within 3.2% (half a
// bucket of 1/16), buckets are in order, and nothing is out of range.
func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, ns := range []int64{-5, 0, 1, 15, 16, 17, 31, 32, 33, 1000, 1 << 20, int64(time.Second), 1<<40 - 1} {
		i := bucketOf(ns)
		assert.GreaterOrEqual(t, i, prev, "%d", ns)
		assert.Less(t, i, nBuckets)
		prev = i
		if ns > 0 {
			assert.InEpsilon(t, float64(ns), midpoint(i), 1.0/32+1e-9, "%d", ns)
		}
	}
	assert.Equal(t, nBuckets-1, bucketOf(math.MaxInt64))
	for ns := int64(1); ns < 1<<20; ns = ns*3/2 + 1 {
		assert.InEpsilon(t, float64(ns), midpoint(bucketOf(ns)), 1.0/32+1e-9, "%d", ns)
	}
}

// TestStatistic: the mean and the quantiles of a drained histogram.
func TestStatistic(t *testing.T) {
	var h histogram
	for i := range 100 {
		h.add(int64(i+1) * int64(time.Millisecond))
	}
	var c [nBuckets]uint64
	n := h.drain(&c)
	assert.Equal(t, uint64(100), n)
	assert.Zero(t, h.count(), "drained")
	assert.InEpsilon(t, 50.5e6, statistic(&c, n, 0), 0.01)
	assert.InEpsilon(t, 50e6, statistic(&c, n, 0.495), 0.04)
	assert.InEpsilon(t, 91e6, statistic(&c, n, 0.9), 0.04)
	assert.InEpsilon(t, 100e6, statistic(&c, n, 0.999), 0.04)
}
