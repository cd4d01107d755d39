package retry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBudgetBoundsRetryStorm is the budget's reason to be: an always-failing
// dependency, 10,000 requests over 10 seconds, each making up to 4
// attempts. Without a budget that is 40,000 attempts; with the default
// budget (10% over 10s) exactly 10% more than the requests: the floor lends
// nothing to a caller whose attempts all fail (beyond its first
// healthHistory attempts, which the window's 10% absorbs here).
func TestBudgetBoundsRetryStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const requests = 10_000
		b := mustBudget(t, window10s)
		r := storm(b, requests, time.Millisecond, 4) // 0 … 9.999s

		// The storm lies within the budget's first window, where the budget
		// counts every request exactly (see windowRequests), so no estimate
		// tolerance is needed; and the float error of 0.1 × R (< 1e-12)
		// cannot admit an extra whole retry. Hence tolerance 0.
		assert.LessOrEqual(t, r.attempts, requests+requests/10)
		assert.Equal(t, requests/10, r.retries, "within one window, exactly 10%: no floor")

		m := b.Metrics()
		assert.Equal(t, uint64(requests), m.Requests)
		assert.Equal(t, uint64(r.retries), m.Retries)
		assert.Equal(t, uint64(r.refused), m.Exhausted)
		assert.Equal(t, r.requests+r.retries, r.attempts)
	})
}

// TestBudgetBoundsEveryWindow runs a storm across several windows, at a
// steady rate, and checks the budget's rule over every window that ends at
// a retry: retries ≤ 0.1 × requests, with the requests counted exactly by
// the test (the floor is off: every attempt fails), except in the first
// window, where the floor lends to the budget's first attempts.
func TestBudgetBoundsEveryWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			requests = 30_000
			window   = 10 * time.Second
		)
		b := mustBudget(t, window10s)
		r := storm(b, requests, time.Millisecond, 4) // 0 … 29.999s

		// Tolerance: after the first window, the requests of a window are
		// estimated by interpolating between samples; at a steady one
		// request per ms that is off by at most a request or so (requests
		// are discrete), 0.1 retry. 1 covers it.
		const tolerance = 1
		assert.LessOrEqual(t, r.attempts, requests+requests/10+3*tolerance)
		assert.GreaterOrEqual(t, float64(r.retries), 0.09*requests)
		worst := math.Inf(-1)
		for _, end := range r.retryAt {
			retries := countIn(r.retryAt, end-window, end)
			reqs := countIn(r.requestAt, end-window, end)
			allowed := 0.1 * float64(reqs)
			if end < window {
				allowed++ // the floor (one retry per window), lent to the first attempts
			}
			excess := float64(retries) - allowed
			worst = max(worst, excess)
			if excess > tolerance {
				t.Fatalf("window ending at %v: %d retries for %d requests", end, retries, reqs)
			}
		}
		t.Logf("%d requests, %d retries; worst window: %+.1f retries over the rule", r.requests, r.retries, worst)
	})
}

// countIn returns how many of the sorted times are in (from, to].
func countIn(times []time.Duration, from, to time.Duration) int {
	lo := sort.Search(len(times), func(i int) bool { return times[i] > from })
	hi := sort.Search(len(times), func(i int) bool { return times[i] > to })
	return hi - lo
}

// TestBudgetFloorAtLowTraffic: at 1 request a second, 10% of requests is
// one retry per 10 seconds. When every attempt fails the floor does not
// raise that (it used to lend 1 retry a second to every caller, so a fleet
// of quiet callers added a retry a second each): past the budget's first
// attempts, retries are those of a budget with no floor.
func TestBudgetFloorAtLowTraffic(t *testing.T) {
	var withFloor, noFloor stormResult
	synctest.Test(t, func(t *testing.T) {
		withFloor = storm(mustBudget(t, window10s), 30, time.Second, 4) // requests at 0, 1, …, 29s
	})
	synctest.Test(t, func(t *testing.T) {
		noFloor = storm(mustBudget(t, BudgetConfig{NoFloor: true, Window: 10 * time.Second}), 30, time.Second, 4)
	})
	// Without the floor, 10 requests earn exactly one retry: at 9, 19
	// and 29s, when each window holds 10 requests.
	assert.Equal(t, 3, noFloor.retries)
	assert.Equal(t, []time.Duration{9 * time.Second, 19 * time.Second, 29 * time.Second}, noFloor.retryAt)

	// With it, the budget's first healthHistory attempts may retry (a new
	// client's first failures); those retries fill the first window, and
	// after it the floor lends nothing.
	var onset, later []time.Duration
	for _, at := range withFloor.retryAt {
		if at < 10*time.Second {
			onset = append(onset, at)
		} else {
			later = append(later, at)
		}
	}
	assert.LessOrEqual(t, len(onset), healthHistory)
	assert.Len(t, later, len(noFloor.retryAt)-1, "after the first window, as many as with no floor")
	for _, end := range later {
		assert.LessOrEqual(t, float64(countIn(withFloor.retryAt, end-10*time.Second, end)),
			0.1*float64(countIn(withFloor.requestAt, end-10*time.Second, end)), "window ending at %v: 10%% only", end)
	}
	t.Logf("onset retries at %v, later at %v", onset, later)
}

// TestBudgetWindowSlides: a burst that exhausts the budget is forgotten one
// Window later.
func TestBudgetWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBudget(t, window10s)
		r := storm(b, 100, 0, 4) // all at once
		assert.Equal(t, 10, r.retries, "0.1 × 100 requests; no floor: every attempt failed")
		assert.False(t, b.AllowRetry())

		bubble.Sleep(10*time.Second - time.Nanosecond)
		assert.False(t, b.AllowRetry(), "the burst is still in the window")

		bubble.Sleep(time.Nanosecond)
		// The burst's requests, retries and failures left together: only
		// the floor remains, as on a new budget: one retry per window.
		assert.Equal(t, 1, drain(b, 1000))

		m := b.Metrics()
		assert.Equal(t, uint64(11), m.Retries)
		assert.Equal(t, uint64(r.refused+2+1), m.Exhausted, "the storm's, 2 asked after it, 1 ending drain")
	})
}

// TestBudgetRetriesLeaveAfterAWindow checks how long a retry is counted:
// its bucket's retries (a tenth of a Window wide) leave together, a Window
// after the bucket's latest retry.
func TestBudgetRetriesLeaveAfterAWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No requests: the floor alone, 3 retries a window.
		b := mustBudget(t, BudgetConfig{MinRetriesPerSecond: 3, Window: time.Second})
		assert.True(t, b.AllowRetry()) // 0
		bubble.Sleep(50 * time.Millisecond)
		assert.True(t, b.AllowRetry()) // 50ms, in the same bucket as 0
		bubble.Sleep(100 * time.Millisecond)
		assert.True(t, b.AllowRetry()) // 150ms, the next bucket
		assert.False(t, b.AllowRetry())

		bubble.Sleep(time.Second - 150*time.Millisecond) // 1s
		assert.False(t, b.AllowRetry(), "the retry at 0 leaves with the one at 50ms")
		bubble.Sleep(50*time.Millisecond - time.Nanosecond)
		assert.False(t, b.AllowRetry())
		bubble.Sleep(time.Nanosecond) // 1.05s: the first bucket leaves
		assert.Equal(t, 2, drain(b, 10))
		bubble.Sleep(100 * time.Millisecond) // 1.15s: the second bucket leaves
		assert.Equal(t, 1, drain(b, 10))
	})
}

func TestBudgetSuccessesDoNotConsume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBudget(t, window10s)
		for range 1000 {
			b.Request()
			b.Success()
			bubble.Sleep(time.Millisecond)
		}
		m := b.Metrics()
		assert.Equal(t, BudgetMetrics{Requests: 1000}, m)

		b.Request() // a request that fails
		b.Failure()
		assert.Equal(t, 101, drain(b, 1000), "0.1 × 1001 + the floor's 1, nothing spent by successes")
	})
	synctest.Test(t, func(t *testing.T) {
		b := mustBudget(t, BudgetConfig{Mode: "tokens"})
		for range 1000 {
			b.Request()
			b.Success()
		}
		assert.Equal(t, 10.0, b.Metrics().Tokens, "successes only give tokens back, up to MaxTokens")
		assert.True(t, b.AllowRetry())
	})
}

// TestBudgetForgetsIdleTraffic: requests made long ago lend no credit now.
func TestBudgetForgetsIdleTraffic(t *testing.T) {
	const burst = 1_000_000
	t.Run("visited", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := mustBudget(t, window10s)
			for range burst {
				b.Request()
			}
			b.Metrics() // a slow-path visit: an exporter, or a retry
			bubble.Sleep(time.Hour)
			assert.Equal(t, 1, drain(b, burst), "only the floor, as on a new budget")
		})
	})
	t.Run("unvisited", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := mustBudget(t, window10s)
			for range burst {
				b.Request()
			}
			bubble.Sleep(time.Hour)
			// No slow-path visit since creation: the burst is counted as if
			// spread over the hour, so the window holds burst × 10s/1h ≈
			// 2778 of it: 277 retries + the floor's 1 (documented on Budget).
			n := drain(b, burst)
			assert.InDelta(t, 0.1*burst*10/3600+1, n, 1)
			assert.Less(t, n, burst/100, "no credit for the bulk of the burst")

			bubble.Sleep(10 * time.Second) // one more window: nothing left
			assert.Equal(t, 1, drain(b, burst))
		})
	})
}

// TestBudgetEstimate checks the estimate of a window's requests against the
// exact count, and its documented error bound.
func TestBudgetEstimate(t *testing.T) {
	const window = time.Second
	// visitAt makes a slow-path visit and returns its estimate and the
	// points around the window's start that it used.
	visitAt := func(t *testing.T, b *Budget) (est float64, p, q sample) {
		b.mu.Lock()
		defer b.mu.Unlock()
		w := &b.window
		now := w.now()
		cum := b.counts.Load(cRequests)
		x := now - w.win
		p, q = w.sample(0), sample{t: now, n: cum}
		for i := 1; i < w.n; i++ {
			if s := w.sample(i); s.t <= x {
				p = s
			} else {
				q = s
				break
			}
		}
		if x >= 0 {
			require.LessOrEqual(t, p.t, x, "a point at or before the window's start")
		}
		est = w.visit(now, cum, b.counts.Load(cFailures))
		checkSamples(t, b)
		return est, p, q
	}
	t.Run("steady rate is exact", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := mustBudget(t, BudgetConfig{Window: window})
			rng := rand.New(rand.NewPCG(3, 4))
			var at []time.Duration
			start := time.Now()
			for range 20_000 { // one request every 1ms for 20s, visits at random
				b.Request()
				at = append(at, time.Since(start))
				if rng.IntN(200) == 0 {
					est, _, _ := visitAt(t, b)
					now := time.Since(start)
					assert.InDelta(t, float64(countIn(at, now-window, now)), est, 1.01, "at %v", now)
				}
				bubble.Sleep(time.Millisecond)
			}
		})
	})
	t.Run("error bounded by the requests between the points", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := mustBudget(t, BudgetConfig{Window: window})
			rng := rand.New(rand.NewPCG(5, 6))
			var at []time.Duration // a request's time, one entry a request
			start := time.Now()
			lastVisit := time.Duration(0)
			maxGap := time.Duration(0)
			for range 3000 {
				switch k := rng.IntN(10); {
				case k < 6: // a burst of requests
					for range rng.IntN(50) {
						b.Request()
						at = append(at, time.Since(start))
					}
				case k < 9:
					bubble.Sleep(time.Duration(rng.IntN(int(window / 5))))
				default:
					if rng.IntN(10) == 0 {
						bubble.Sleep(time.Duration(rng.Int64N(int64(3 * window)))) // a long silence
					}
					est, p, q := visitAt(t, b)
					now := time.Since(start)
					maxGap = max(maxGap, now-lastVisit)
					lastVisit = now
					truth := float64(countIn(at, now-window, now))
					if now < window {
						assert.Equal(t, truth, est, "the first window is exact")
						continue
					}
					// With p.n requests made by p.t <= now-Window and q.n by
					// q.t > now-Window, the truth lies between cum - q.n and
					// cum - p.n, and so does the estimate: they differ by at
					// most q.n - p.n, the requests made between the points.
					cum := float64(len(at))
					assert.GreaterOrEqual(t, truth, cum-float64(q.n))
					assert.LessOrEqual(t, truth, cum-float64(p.n))
					assert.InDelta(t, truth, est, float64(q.n-p.n)+1e-6, "at %v, points %v and %v", now, p, q)
				}
			}
			t.Logf("longest gap between visits: %v", maxGap)
		})
	})
	t.Run("points close while visits are frequent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := mustBudget(t, BudgetConfig{Window: window})
			rng := rand.New(rand.NewPCG(7, 8))
			const delta = 30 * time.Millisecond
			for range 2000 {
				b.Request()
				bubble.Sleep(time.Duration(1 + rng.Int64N(int64(delta))))
				_, p, q := visitAt(t, b)
				if b.window.now() >= b.window.win {
					assert.LessOrEqual(t, time.Duration(q.t-p.t), window/10+delta)
				}
			}
		})
	})
}

// checkSamples checks the invariants of the ratio mode's samples: in order
// of time and count, each at least a width after the one two before it,
// spanning a window once the ring is full.
func checkSamples(t *testing.T, b *Budget) {
	t.Helper()
	if b.tokens {
		return
	}
	w := &b.window
	require.GreaterOrEqual(t, w.n, 1)
	require.LessOrEqual(t, w.n, nSamples)
	for i := 1; i < w.n; i++ {
		require.LessOrEqual(t, w.sample(i-1).t, w.sample(i).t, "sample %d", i)
		require.LessOrEqual(t, w.sample(i-1).n, w.sample(i).n, "sample %d", i)
		if i >= 2 {
			require.GreaterOrEqual(t, w.sample(i).t-w.sample(i-2).t, w.width, "sample %d", i)
		}
	}
	if w.n == nSamples {
		require.GreaterOrEqual(t, w.sample(w.n-1).t-w.sample(0).t, w.win)
	} else {
		require.Equal(t, sample{}, w.sample(0), "the creation sample")
	}
}

// call makes one request the way a Retry uses its budget: its first fails
// attempts fail, the rest succeed, within maxAttempts and while the budget
// allows. It returns the retries made and whether the request succeeded.
func call(b *Budget, fails, maxAttempts int) (retries int, ok bool) {
	b.Request()
	for attempt := 1; ; attempt++ {
		if attempt > fails {
			b.Success()
			return retries, true
		}
		b.Failure()
		if attempt >= maxAttempts || !b.AllowRetry() {
			return retries, false
		}
		retries++
	}
}

// TestBudgetFloorLendsToQuietHealthyCaller: a caller with a request every
// 2s (2.5 a window: 10% of it is no whole retry) whose every fourth request
// fails once can retry each of those failures, thanks to the floor; with
// no floor it can retry none.
func TestBudgetFloorLendsToQuietHealthyCaller(t *testing.T) {
	for _, tc := range []struct {
		cfg  BudgetConfig
		want int
	}{{BudgetConfig{}, 10}, {BudgetConfig{NoFloor: true}, 0}} {
		synctest.Test(t, func(t *testing.T) {
			b := mustBudget(t, tc.cfg)
			succeeded := 0
			for i := range 40 {
				fails := 0
				if i%4 == 3 {
					fails = 1
				}
				if _, ok := call(b, fails, 3); ok && fails == 1 {
					succeeded++
				}
				bubble.Sleep(2 * time.Second)
			}
			assert.Equal(t, tc.want, succeeded, "failed requests rescued by a retry, %+v", tc.cfg)
		})
	}
}

// TestBudgetFloorFollowsHealth: a quiet caller (1 request a second, half a
// retry a window from the ratio) is healthy for 20s, then every attempt
// fails for 30s, then it recovers, with one request in five failing once.
// The floor lends at the start of the outage (at most one window's floor,
// one retry, once), lends nothing for the rest of it, and lends again once the
// caller's recent attempts mostly succeed. With MaxAttempts 2 a request's
// last failure asks for no retry: counting failures (not retry requests)
// is what keeps the floor off there too.
func TestBudgetFloorFollowsHealth(t *testing.T) {
	for _, maxAttempts := range []int{2, 4} {
		t.Run(fmt.Sprint("MaxAttempts=", maxAttempts), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustBudget(t, BudgetConfig{}) // 5s window, floor 1 a window
				for range 20 {
					call(b, 0, maxAttempts)
					bubble.Sleep(time.Second)
				}
				onset, outage := 0, 0
				for i := range 30 {
					n, _ := call(b, maxAttempts, maxAttempts)
					if i < 5 {
						onset += n
					} else {
						outage += n
					}
					bubble.Sleep(time.Second)
				}
				assert.Positive(t, onset, "the caller was healthy when the outage began")
				assert.LessOrEqual(t, onset, 1, "at most one window's floor: one retry")
				assert.Zero(t, outage, "mostly failing: no floor, and 10% of 5 requests is no retry")

				rescued := 0
				for i := range 30 {
					fails := 0
					if i%5 == 4 {
						fails = 1
					}
					if _, ok := call(b, fails, maxAttempts); ok && fails == 1 {
						rescued++
					}
					bubble.Sleep(time.Second)
				}
				assert.Equal(t, 6, rescued, "recovered: every occasional failure retried")
			})
		})
	}
}

// TestBudgetFleetDoesNotGrowWithCallers: a fleet of callers, each with its
// own default budget, sends 700 requests a second in all (round robin), 10s
// healthy, then 60s in which every attempt fails (up to 4 attempts). Once
// the outage has lasted a Window, the fleet's retries are at most 10% of
// its requests whether it is 8 callers or 512: the floor, which used to add
// 1 retry a second per caller (512/s for 512 callers, for 700 requests a
// second), adds nothing. Before that, each caller's floor lends at most
// one window's floor, once: the default floor is one retry per Window, so
// 512 callers add at most 512 retries at the start (they used to add up to
// 5 each, 2560).
func TestBudgetFleetDoesNotGrowWithCallers(t *testing.T) {
	const (
		rate     = 700
		warmup   = 10 * time.Second
		outage   = 60 * time.Second
		window   = DefaultBudgetWindow
		gap      = time.Second / rate
		floorWin = 1 // MinRetriesPerSecond × Window, the default: one per window
	)
	share := map[int]float64{}
	for _, n := range []int{8, 512} {
		synctest.Test(t, func(t *testing.T) {
			budgets := make([]*Budget, n)
			for i := range budgets {
				budgets[i] = mustBudget(t, BudgetConfig{})
			}
			start := time.Now()
			var onset, steady, steadyRequests int
			for i := 0; ; i++ {
				at := time.Since(start)
				if at >= warmup+outage {
					break
				}
				b := budgets[i%n]
				if at < warmup {
					call(b, 0, 4)
				} else {
					r, _ := call(b, 4, 4)
					if at < warmup+window+window/10 { // the window, and a bucket, for its retries to leave
						onset += r
					} else {
						steady += r
						steadyRequests++
					}
				}
				bubble.Sleep(gap)
			}
			share[n] = float64(steady) / float64(steadyRequests)
			t.Logf("%d callers: onset %d retries; then %d retries for %d requests (%.4f)", n, onset, steady, steadyRequests, share[n])
			assert.LessOrEqual(t, share[n], 0.1, "%d callers: at most 10%% of requests", n)
			// The onset's windows reach back a Window into the healthy
			// traffic, whose 10% they lend (see BudgetConfig.Window): 10%
			// of the requests of [warmup-window, warmup+window+window/10].
			lent := 0.1 * rate * (2*window + window/10).Seconds()
			assert.LessOrEqual(t, float64(onset), lent+float64(n*floorWin),
				"%d callers: the onset is at most the lent 10%% and a window's floor per caller", n)
		})
	}
	assert.LessOrEqual(t, share[512], share[8]+0.001, "512 callers add no more than 8 with the same traffic")
}
