package retry

import (
	"fmt"
	"math"
	"time"
)

// This file is the ratio mode of a Budget (RatioMode): Finagle's
// RetryBudget over a sliding window. Its algorithm is described in the
// [Budget] doc; the Budget calls it under its mutex.

// ratioDefaults returns c, a valid ratio-mode config, with the defaults
// applied.
func (c BudgetConfig) ratioDefaults() BudgetConfig {
	if c.Ratio == 0 {
		c.Ratio = defaultRatio
	}
	if c.Window == 0 {
		c.Window = defaultWindow
	}
	if c.MinRetriesPerSecond == 0 && !c.NoFloor {
		c.MinRetriesPerSecond = 1 / c.Window.Seconds() // one retry per Window
	}
	return c
}

// validateRatio validates c as a ratio-mode config.
func (c *BudgetConfig) validateRatio() error {
	switch {
	case c.MaxTokens != 0:
		return c.otherMode("MaxTokens", c.MaxTokens)
	case c.TokenRatio != 0:
		return c.otherMode("TokenRatio", c.TokenRatio)
	case outside(c.Ratio, 0, maxRatio):
		return badBudget("Ratio", c.Ratio, fmt.Sprintf("out of range (0,%v]", maxRatio))
	case outside(c.MinRetriesPerSecond, 0, maxMinRetries):
		return badBudget("MinRetriesPerSecond", c.MinRetriesPerSecond, fmt.Sprintf("out of range [0,%v]", maxMinRetries))
	case c.NoFloor && c.MinRetriesPerSecond != 0:
		return fmt.Errorf("retry: budget NoFloor set with MinRetriesPerSecond %v; choose one", c.MinRetriesPerSecond)
	case c.Window != 0 && (c.Window < minBudgetWindow || c.Window > maxBudgetWindow):
		return badBudget("Window", c.Window, fmt.Sprintf("out of range [%v,%v]", minBudgetWindow, maxBudgetWindow))
	}
	return nil
}

// ratioWindow is the state of a ratio-mode budget: the samples of the
// request count from which it estimates the requests of the window, and
// the buckets that count its retries. It reads the clock itself; the
// request count is given. It is not safe for concurrent use: the Budget
// holds its mutex.
type ratioWindow struct {
	epoch time.Time // the clock is read as time.Since(epoch): cheap and monotonic
	width int64     // a bucket's width, and the least spacing of samples, ns
	win   int64     // Window, ns
	ratio float64   // Ratio
	floor float64   // MinRetriesPerSecond × Window: lent only while the caller is healthy

	granted uint64 // retries allowed so far, counted at the time they are allowed

	samples [nSamples]sample // a ring, oldest at head; the newest is the latest visit
	head, n int
	buckets [nBuckets]bucket
}

const (
	// healthHistory is the number of attempts (requests and retries) a
	// budget counts before the floor's health is judged: until then the
	// floor lends, so that a new client can retry its first failures.
	healthHistory = 10
	// nSamples samples, each at least a bucket width (ceil(Window/10))
	// after the one two places before it, span at least a Window, so when
	// the ring is full its oldest is at or before the start of the window:
	// s0 <= s20 - 10 widths <= now - Window. Until then, the oldest is the
	// creation sample, at or before the start of any window that does not
	// begin before the budget.
	nSamples = 21
	// nBuckets buckets of width ceil(Window/10) hold all the retries of the
	// last Window: the buckets overlapping (now-Window, now] are at most the
	// current one and the 10 before it.
	nBuckets = 11
)

// sample is what the budget had counted by a time, ns since epoch: the
// requests made (n), the failures reported (f) and the retries allowed (g).
type sample struct {
	t       int64
	n, f, g uint64
}

// bucket counts the retries made in the bucket-wide interval idx.
type bucket struct {
	idx  int64 // time / width of the bucket's retries
	n    uint64
	last int64 // time of its latest retry
}

// init sets w up for cfg, a ratio-mode config with defaults applied, with
// the creation sample (now, 0).
func (w *ratioWindow) init(cfg BudgetConfig) {
	w.epoch = time.Now()
	w.win = int64(cfg.Window)
	w.width = (w.win + 9) / 10
	w.ratio = cfg.Ratio
	w.floor = wholeIfClose(cfg.MinRetriesPerSecond * cfg.Window.Seconds())
	w.n = 1 // samples[0] is (creation, 0)
	for i := range w.buckets {
		w.buckets[i].idx = -1
	}
}

// wholeIfClose returns x rounded to the nearest integer if it is within
// float error of it, and x otherwise. The floor of a window is a rate times
// a duration: the default, (1/W) × W, comes out a hair under 1 for some W
// (49s), which would lend no retry at all.
func wholeIfClose(x float64) float64 {
	if r := math.Round(x); math.Abs(x-r) <= 1e-9*max(r, 1) {
		return r
	}
	return x
}

// now returns the time since w was made, in nanoseconds. The monotonic
// clock never goes back, but a budget used under a fake clock that starts
// earlier (a testing/synctest bubble) would see negative times; clamping
// keeps every index computed from it in range.
func (w *ratioWindow) now() int64 { return max(int64(time.Since(w.epoch)), 0) }

// allow reports whether a retry may be made now, requests having been made
// and failures reported so far, and if so counts it in the window.
func (w *ratioWindow) allow(requests, failures uint64) bool {
	now := w.now()
	cur := w.point(now, requests, failures)
	allowed := w.ratio * w.windowRequests(now, cur.n)
	if w.healthy(now, cur) {
		allowed += w.floor
	}
	w.record(cur)
	if float64(w.windowRetries(now)+1) > allowed {
		return false
	}
	w.addRetry(now)
	return true
}

// point returns the counts at now as a sample. The per-P counts' Loads are
// monotonic; max makes sure of it.
func (w *ratioWindow) point(now int64, requests, failures uint64) sample {
	last := w.sample(w.n - 1)
	return sample{now, max(requests, last.n), max(failures, last.f), w.granted}
}

// healthy reports whether the floor may lend at cur: whether, over the
// span from the window's start point p (the last sample at or before
// now-Window, or the creation sample) to cur, the failures number at most
// half the attempts (requests + retries allowed). The span is counted
// exactly, from sample to sample: it is the window, or a little more, and
// for a caller quiet for longer than a Window it reaches back to its last
// slow-path visit, so a caller whose every request fails stays unhealthy
// however rarely it calls. A budget with no history to judge by, one that
// has counted fewer than healthHistory attempts in its life, is healthy.
func (w *ratioWindow) healthy(now int64, cur sample) bool {
	if cur.n+cur.g < healthHistory {
		return true
	}
	p, _ := w.around(now - w.win)
	attempts := (cur.n - p.n) + (cur.g - p.g)
	return 2*(cur.f-p.f) <= attempts
}

// visit records a slow-path visit at now, requests having been made and
// failures reported so far, and returns the estimated number of requests
// made in (now-Window, now].
func (w *ratioWindow) visit(now int64, requests, failures uint64) float64 {
	cur := w.point(now, requests, failures)
	reqs := w.windowRequests(now, cur.n)
	w.record(cur)
	return reqs
}

// record keeps s, the counts at a slow-path visit, in the samples.
//
// The newest sample follows the visits (each overwrites it) until a visit
// comes a bucket width or more after the sample before it; that visit is
// appended, and the sample it follows is kept. So every sample is at least
// a width after the one two places before it, and the latest visit before
// a silence longer than a width is kept.
func (w *ratioWindow) record(s sample) {
	switch {
	case w.n >= 2 && s.t-w.sample(w.n-2).t < w.width:
		w.samples[(w.head+w.n-1)%nSamples] = s
	case w.n == nSamples:
		w.samples[w.head] = s // the oldest makes room
		w.head = (w.head + 1) % nSamples
	default:
		w.samples[(w.head+w.n)%nSamples] = s
		w.n++
	}
}

// sample returns the i-th oldest sample.
func (w *ratioWindow) sample(i int) sample { return w.samples[(w.head+i)%nSamples] }

// windowRequests estimates the requests made in (now-Window, now], given
// the number cum made so far, from the samples and (now, cum).
func (w *ratioWindow) windowRequests(now int64, cum uint64) float64 {
	x := now - w.win // the start of the window, excluded
	if x < 0 {
		return float64(cum) // the window began before the budget
	}
	p, q := w.around(x)
	if q.t < 0 {
		q = sample{t: now, n: cum}
	}
	at := float64(p.n) + float64(q.n-p.n)*(float64(x-p.t)/float64(q.t-p.t))
	return float64(cum) - at
}

// around returns the last sample at or before x, and the one after it (t
// -1 if there is none: the next point is now). The oldest sample is at or
// before x when x >= 0 (see nSamples); for x < 0 it is the creation sample.
func (w *ratioWindow) around(x int64) (p, q sample) {
	p, q = w.sample(0), sample{t: -1}
	for i := 1; i < w.n; i++ {
		if s := w.sample(i); s.t > x {
			return p, s
		} else {
			p = s
		}
	}
	return p, q
}

// windowRetries returns the retries counted in the window at now: those of
// the buckets whose latest retry is in (now-Window, now]. A bucket older
// than the 10 before the current one ended by now-Window (10 bucket widths
// are at least a Window), so it holds no retry of the window.
func (w *ratioWindow) windowRetries(now int64) uint64 {
	var n uint64
	for _, bk := range w.buckets {
		if bk.last > now-w.win {
			n += bk.n
		}
	}
	return n
}

// addRetry counts a retry made at now.
func (w *ratioWindow) addRetry(now int64) {
	cur := now / w.width
	bk := &w.buckets[cur%nBuckets]
	if bk.idx != cur {
		*bk = bucket{idx: cur}
	}
	bk.n++
	bk.last = now
	w.granted++
}
