package ratelimit

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/bubble"
)

// A goroutine that read the clock, then stalled (a busy machine, a GC
// pause) while the bucket refilled, must not be refused tokens that are
// there: each path that would refuse reads the clock again first. The
// stale reading is passed in, as the stalled goroutine would have it.
func TestStaleClockIsNotARefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := New(Config{Rate: 10, Burst: 1})
		require.NoError(t, err)
		stale := l.now()
		require.True(t, l.Allow()) // the bucket is empty at stale
		bubble.Sleep(100 * time.Millisecond)
		p := l.p.Load()
		assert.True(t, l.allowLate(p, stale), "Allow: a token came during the stall")

		bubble.Sleep(100 * time.Millisecond)
		_, _, ok := l.take(p, stale, 1, 0)
		require.False(t, ok, "judged at stale, the token is missing")
		_, ok = l.retake(p, stale, 1)
		assert.True(t, ok, "Try: judged again now, it is there")

		// Wait with a deadline the token seems to miss, judged at stale.
		bubble.Sleep(100 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		start := time.Now()
		require.NoError(t, l.waitSince(ctx, p, 1, stale))
		assert.Zero(t, time.Since(start), "judged now, it is there: no wait")

		// A wait judged at stale is timed from now.
		bubble.Sleep(50 * time.Millisecond) // the next token comes in 50ms
		start = time.Now()
		require.NoError(t, l.waitSince(context.Background(), p, 1, stale))
		assert.Equal(t, 50*time.Millisecond, time.Since(start))

		assert.False(t, l.Allow(), "an empty bucket still refuses")
		m := l.Metrics()
		assert.Equal(t, uint64(4), m.Allowed) // Allow, allowLate, two waits (take counts nothing)
		assert.Equal(t, uint64(1), m.Limited)
	})
}

func TestKeyedStaleClockIsNotARefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := NewKeyed(KeyedConfig{Config: Config{Rate: 10, Burst: 1}})
		require.NoError(t, err)
		stale := int64(time.Since(k.epoch))
		require.True(t, k.Allow("a"))
		bubble.Sleep(100 * time.Millisecond)
		ok, _ := k.takeSince("a", 1, stale)
		assert.True(t, ok, "a token came during the stall")
		ok, _ = k.takeSince("a", 1, int64(time.Since(k.epoch)))
		assert.False(t, ok, "an empty bucket still refuses")
	})
}
