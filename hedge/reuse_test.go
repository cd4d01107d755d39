package hedge

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the reuse of call states (Hedge.calls): a state goes back to
// the pool only when no goroutine but the caller's can touch it, and no
// context handed to an operation is part of it.

// A fire that began before the first attempt answered still holds the
// call after Get returns (here: in the Gate, until 15ms). Its state must
// not be reused by the calls that follow meanwhile: if it were, the late
// fire would find a live call and start a hedge of it.
func TestLateFireDoesNotTouchALaterCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		h := mustNew(t, Config{Delay: 10 * time.Millisecond, MaxAttempts: 3, Gate: func() bool {
			asked.Add(1)
			bubble.Sleep(5 * time.Millisecond)
			return true
		}})
		lat := []time.Duration{12 * time.Millisecond, time.Millisecond, 8 * time.Millisecond, 8 * time.Millisecond}
		var n atomic.Int32
		op := func(ctx context.Context) (int, error) {
			i := n.Add(1) - 1
			if !sleep(ctx, lat[i]) {
				return 0, ctx.Err()
			}
			return int(i), nil
		}
		for want := range 4 { // call 0 at 0ms, its fire at 10-15ms; calls 1-3 from 12ms
			v, err := Get(t.Context(), h, op, nil)
			require.NoError(t, err)
			assert.Equal(t, want, v)
		}
		bubble.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, int32(4), n.Load(), "no attempt but the four calls' first")
		assert.Equal(t, int32(1), asked.Load(), "only call 0's timer fired")
		assert.Zero(t, h.Metrics().Hedges)
	})
}

// A timer that fires at the very moment the first attempt answers (the
// op takes exactly the delay) races the call's end, in either order, call
// after call on one Hedge: every call returns its own first attempt's or
// its hedge's value, every attempt's context is cancelled by the time Get
// returns, and nothing runs once the calls are over.
func TestFireAtTheMomentTheFirstAttemptAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 10 * time.Millisecond
		h := mustNew(t, Config{Delay: delay, MaxAttempts: 2})
		var ctxs []context.Context
		for call := range 200 {
			var mu sync.Mutex
			var mine []context.Context
			v, err := Get(t.Context(), h, func(ctx context.Context) (int, error) {
				mu.Lock()
				mine = append(mine, ctx)
				first := len(mine) == 1
				mu.Unlock()
				if first {
					bubble.Sleep(delay) // answers as the timer fires
				}
				return call, nil
			}, nil)
			require.NoError(t, err)
			require.Equal(t, call, v)
			var ended []error // of the attempts begun by the time Get returned
			mu.Lock()
			for _, ctx := range mine {
				ended = append(ended, ctx.Err())
			}
			mu.Unlock()
			for i, err := range ended {
				assert.ErrorIs(t, err, context.Canceled, "call %d attempt %d", call, i)
			}
			synctest.Wait() // a losing hedge may still be returning
			mu.Lock()
			require.LessOrEqual(t, len(mine), 2)
			ctxs = append(ctxs, mine...)
			mu.Unlock()
		}
		bubble.Sleep(time.Second)
		synctest.Wait()
		for _, ctx := range ctxs {
			assert.ErrorIs(t, ctx.Err(), context.Canceled, "and stays cancelled")
		}
		t.Logf("%d hedges in 200 calls", h.Metrics().Hedges)
	})
}

// An operation may keep its context past its call (a goroutine it
// started): reusing the call's state must neither un-cancel it nor, for a
// winner with a release, cancel it early.
func TestKeptContextOutlivesReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: time.Hour})
		var kept context.Context
		_, err := Get(t.Context(), h, func(ctx context.Context) (int, error) { kept = ctx; return 1, nil }, nil)
		require.NoError(t, err)
		parent, cancel := context.WithCancel(t.Context())
		var winner context.Context
		_, err = Get(parent, h, func(ctx context.Context) (int, error) { winner = ctx; return 2, nil }, func(int) {})
		require.NoError(t, err)
		for range 100 { // reuse the state, with and without a release
			_, err := Get(t.Context(), h, func(ctx context.Context) (int, error) { return 3, nil }, nil)
			require.NoError(t, err)
			_, err = Get(t.Context(), h, func(ctx context.Context) (int, error) { return 4, nil }, func(int) {})
			require.NoError(t, err)
		}
		assert.ErrorIs(t, kept.Err(), context.Canceled, "a finished call's context stays cancelled")
		select {
		case <-kept.Done():
		default:
			t.Error("kept.Done() not closed")
		}
		assert.NoError(t, winner.Err(), "a winner with a release keeps its context while its ctx lives")
		cancel()
		assert.ErrorIs(t, winner.Err(), context.Canceled, "and it ends with ctx")
	})
}

// One Hedge serving operations of several value types (Get of two types
// and Do) reuses each call state only for its own type.
func TestMixedValueTypesShareAHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, Config{Delay: time.Hour})
		for i := range 100 {
			n, err := Get(t.Context(), h, func(context.Context) (int, error) { return i, nil }, nil)
			require.NoError(t, err)
			assert.Equal(t, i, n)
			s, err := Get(t.Context(), h, func(context.Context) (string, error) { return "s", nil }, nil)
			require.NoError(t, err)
			assert.Equal(t, "s", s)
			require.ErrorIs(t, h.Do(t.Context(), func(context.Context) error { return errBoom }), errBoom)
		}
		assert.Equal(t, uint64(300), h.Metrics().Calls)
	})
}
