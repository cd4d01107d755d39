package throttle

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
)

// countClock makes th count its clock reads.
func countClock(th *Throttle) *atomic.Int64 {
	var n atomic.Int64
	th.since = func(t time.Time) time.Duration { n.Add(1); return time.Since(t) }
	return &n
}

// admitting reports whether Allow admits at once, without the slow path.
func admitting(th *Throttle) bool { return atomic.LoadUint32(&th.state) == admit }

// peek returns the probability the window's estimate gives now, without
// recording a sample (Probability is a visit, which would move the
// estimate it checks).
func peek(th *Throttle) float64 {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := th.now()
	acc, na := th.win.counts(now, th.point(now))
	return th.probability(acc+na, acc)
}

// TestAcceptPathReadsNoClock: while the backend accepts, Allow, Done (nil,
// an error that is an accept, a forgotten outcome), Do and DoChain read
// no clock, and the counts still land; a refusal reads it, and so does
// every Allow until the throttle is settled again, after which the accept
// path is clock-free again.
func TestAcceptPathReadsNoClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{})
		reads := countClock(th)
		ctx := t.Context()
		ok := func(context.Context) error { return nil }
		for range 100 {
			p, err := th.Allow()
			require.NoError(t, err)
			p.Done(nil)
			p, _ = th.Allow()
			p.Done(errors.New("boom")) // an accept
			p, _ = th.Allow()
			p.Done(context.Canceled) // forgotten
			require.NoError(t, th.Do(ctx, ok))
			require.NoError(t, th.DoChain(ctx, seawall.Op(ok)))
		}
		assert.Zero(t, reads.Load(), "the accept path")
		assert.Equal(t, uint64(400), th.counts.Load(cAccepts), "the accepts landed")

		feed(t, th, 0, 1)
		assert.Equal(t, int64(1), reads.Load(), "a refusal is a visit: one clock read")
		p, err := th.Allow() // 401 requests, 400 accepts: 0, and settled
		require.NoError(t, err)
		p.Done(nil)
		assert.Equal(t, int64(2), reads.Load(), "the first Allow after a refusal decides on the slow path")
		for range 100 {
			p, err := th.Allow()
			require.NoError(t, err)
			p.Done(nil)
		}
		assert.Equal(t, int64(2), reads.Load(), "settled again: no clock")
		m := th.Metrics()
		assert.Equal(t, [3]uint64{502, 501, 1}, [3]uint64{m.Requests, m.Accepts, m.Refused})
	})
}

// TestBurstAgesOut: a burst of refusals throttles for exactly one window
// (in virtual time), then leaves it; once accepts come back the throttle
// admits at once again.
func TestBurstAgesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{Rand: always})
		reads := countClock(th)
		feed(t, th, 0, 50) // at 0s
		bubble.Sleep(time.Minute)
		_, err := th.Allow()
		assert.ErrorIs(t, err, ErrThrottled, "at 1m")
		bubble.Sleep(time.Minute - time.Nanosecond)
		_, err = th.Allow()
		assert.ErrorIs(t, err, ErrThrottled, "at 2m−1ns the burst is in the window")
		bubble.Sleep(time.Nanosecond)
		assert.InDelta(t, 2.0/3, th.Probability(), 1e-9, "at 2m the burst has left: the two rejections are left")
		bubble.Sleep(time.Minute)
		m := th.Metrics() // at 3m: the rejection at 2m−1ns is left
		assert.Equal(t, [3]uint64{1, 0, 2}, [3]uint64{m.Requests, m.Accepts, m.Throttled})
		bubble.Sleep(time.Minute)
		assert.Equal(t, Metrics{Throttled: 2, Refused: 50}, th.Metrics(), "at 4m all have left")

		p, err := th.Allow()
		require.NoError(t, err)
		p.Done(nil)
		n := reads.Load()
		for range 10 {
			p, err := th.Allow()
			require.NoError(t, err)
			p.Done(nil)
		}
		assert.Equal(t, n, reads.Load(), "admitting at once")
	})
}

// TestAgeingAcceptsRaiseTheProbability: accepts older than the window's
// refusals age out first and raise the probability without any new
// refusal; the throttle must not admit at once meanwhile.
func TestAgeingAcceptsRaiseTheProbability(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{Rand: always, NoLift: true}) // the formula alone
		feed(t, th, 100, 0)
		th.Metrics() // a sample at 0s
		bubble.Sleep(time.Minute)
		feed(t, th, 0, 90) // at 1m: 190 requests, 100 accepts
		p, err := th.Allow()
		require.NoError(t, err, "at 1m the probability is 0")
		p.Done(nil)
		assert.False(t, admitting(th), "the accepts will leave before the refusals")
		bubble.Sleep(time.Minute + time.Second)
		_, err = th.Allow()
		assert.ErrorIs(t, err, ErrThrottled, "at 2m1s: 90 refusals, 1 accept")
	})
}

// TestQuietPeriodSpread: after a long quiet period of a healthy throttle
// (no slow path), the accepts since the newest sample are spread evenly
// over the time since it; a refusal that ends the silence counts at its
// time, whole.
func TestQuietPeriodSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{})
		feed(t, th, 0, 1) // the newest sample: (0s, 0 accepts, 1 other)
		bubble.Sleep(time.Second)
		feed(t, th, 3600, 0) // all at 1s, and no visit for an hour
		bubble.Sleep(time.Hour - time.Second)
		m := th.Metrics() // spread over the hour: 3600 × 2m/1h
		assert.Equal(t, [2]uint64{120, 120}, [2]uint64{m.Requests, m.Accepts}, "requests, accepts")

		feed(t, th, 0, 150) // at 1h: counted whole, at 1h
		m = th.Metrics()
		assert.Equal(t, [2]uint64{270, 120}, [2]uint64{m.Requests, m.Accepts})
		assert.InDelta(t, (270.0-240)/271, m.Probability, 1e-9)
	})
}

// TestAdmitOnlyWhileSettled: in random histories (virtual time, several
// K), whenever Allow would admit at once, the window's probability is 0,
// at that time and at any later time until the next refusal or rejection.
// After each history, once the refusals have aged out and accepts come,
// the throttle admits at once again.
func TestAdmitOnlyWhileSettled(t *testing.T) {
	for _, k := range []float64{1, 1.5, 2, 3} {
		for seed := range uint64(20) {
			synctest.Test(t, func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, uint64(k*10)))
				th := mustNew(t, Config{K: k, Window: 10 * time.Second, Rand: r.Float64, NoLift: true})
				admitted := false // the state was admit since the last refusal or rejection
				for i := range 2000 {
					switch r.IntN(10) {
					case 0, 1:
						feed(t, th, 0, 1+r.IntN(3))
						admitted = false
					case 2, 3, 4:
						feed(t, th, 1+r.IntN(5), 0)
					case 5, 6:
						before := th.Metrics().Throttled
						p, err := th.Allow()
						if err == nil {
							p.Done(nil)
						} else if th.Metrics().Throttled != before {
							admitted = false
						}
					case 7:
						_ = th.Metrics() // a visit
					default:
						bubble.Sleep(time.Duration(r.Int64N(int64(3 * time.Second))))
					}
					if admitting(th) {
						admitted = true
					}
					if admitted {
						require.Zero(t, peek(th), "K %v seed %d step %d: admitting at once", k, seed, i)
					}
				}
				bubble.Sleep(10 * time.Second)
				feed(t, th, 1, 0)
				p, err := th.Allow()
				require.NoError(t, err)
				p.Done(nil)
				assert.True(t, admitting(th), "K %v seed %d: settled after a quiet window", k, seed)
			})
		}
	}
}

// TestConcurrentTransitions: goroutines switch the throttle between
// admitting at once and the slow path (refusals, then accepts only) while
// others call it, under -race; no count is lost, and the throttle ends
// settled.
func TestConcurrentTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := mustNew(t, Config{})
		const goroutines, calls = 8, 3000
		var wg sync.WaitGroup
		var throttled atomic.Uint64
		for g := range goroutines {
			wg.Go(func() {
				for i := range calls {
					p, err := th.Allow()
					if err != nil {
						throttled.Add(1)
						continue
					}
					if i%100 < 30 && g%2 == 0 { // bursts of refusals from half the goroutines
						p.Done(refusal)
					} else {
						p.Done(nil)
					}
					if i%250 == 0 {
						bubble.Sleep(time.Second)
					}
				}
			})
		}
		wg.Wait()
		m := th.Metrics() // 12s of virtual time: all in the window
		assert.Equal(t, uint64(goroutines*calls), m.Requests)
		assert.Equal(t, m.Requests, m.Accepts+m.Refused+m.Throttled)
		assert.Equal(t, throttled.Load(), m.Throttled)

		bubble.Sleep(2 * time.Minute)
		for range goroutines {
			wg.Go(func() {
				for range calls {
					p, err := th.Allow()
					if assert.NoError(t, err) {
						p.Done(nil)
					}
				}
			})
		}
		wg.Wait()
		assert.True(t, admitting(th))
		assert.Equal(t, uint64(goroutines*calls), th.Metrics().Accepts)
	})
}

// TestLift: once the backend accepts LiftAfter requests after its latest
// refusal, the throttle admits every request at once (Probability 0),
// though the window still holds the refusals; the next refusal puts the
// formula back at once. NoLift keeps the formula alone.
func TestLift(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, lift := range []int{1, 3} {
			th := mustNew(t, Config{Rand: always, LiftAfter: lift})
			feed(t, th, 10, 40) // 50 requests, 10 accepts: p = (50−20)/51
			want := 30.0 / 51
			assert.InDelta(t, want, th.Probability(), 1e-9)
			for i := range lift {
				_, err := th.Allow()
				assert.ErrorIs(t, err, ErrThrottled, "LiftAfter %d: before accept %d", lift, i+1)
				Permit{th}.Done(nil) // an accept (as from a request the throttle let through)
			}
			p, err := th.Allow()
			require.NoError(t, err, "LiftAfter %d: lifted after %d accepts", lift, lift)
			p.Done(nil)
			assert.True(t, admitting(th), "LiftAfter %d: admitting at once", lift)
			assert.Zero(t, th.Probability(), "LiftAfter %d", lift)

			feed(t, th, 0, 1) // the next refusal
			assert.False(t, admitting(th))
			assert.Positive(t, th.Probability(), "LiftAfter %d: the formula is back, the whole window with it", lift)
			_, err = th.Allow()
			assert.ErrorIs(t, err, ErrThrottled, "LiftAfter %d", lift)
		}

		th := mustNew(t, Config{Rand: always, NoLift: true})
		feed(t, th, 10, 40)
		for range 5 {
			Permit{th}.Done(nil)
		}
		_, err := th.Allow()
		assert.ErrorIs(t, err, ErrThrottled, "NoLift: 15 accepts do not outweigh 40 refusals")
	})
}
