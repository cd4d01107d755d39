package throttle

import (
	"math"
	"time"
)

// This file is the throttle's sliding window: samples of its cumulative
// counts, from which the slow path estimates the counts of the last Window
// (retry/budget_ratio.go keeps its requests the same way). It is not safe
// for concurrent use: the Throttle holds its mutex.

const (
	// nWidths is the number of sample widths in a window: the window's
	// resolution (1s for the default 2 minutes).
	nWidths = 120
	// nSamples samples, each at least a width (ceil(Window/nWidths)) after
	// the one two places before it, span at least nWidths widths, a Window:
	// when the ring is full its oldest is at or before the start of the
	// window. Until then, the oldest is the creation sample, at or before
	// the start of any window that does not begin before the throttle.
	nSamples = 2*nWidths + 1
)

// sample is what the throttle had counted by a time, ns since its epoch:
// the requests the backend accepted (acc), and the others (na: refusals
// and local rejections). Requests are acc + na.
type sample struct {
	t       int64
	acc, na uint64
}

// window is the ring of samples, oldest at head. samples[0] starts as the
// creation sample (0, 0, 0); the newest is the latest slow-path visit.
type window struct {
	win, width int64 // Window, and the least spacing of samples two apart, ns
	samples    [nSamples]sample
	head, n    int
}

func (w *window) init(win time.Duration) {
	w.win = int64(win)
	w.width = (w.win + nWidths - 1) / nWidths
	w.n = 1
}

// sample returns the i-th oldest sample.
func (w *window) sample(i int) sample { return w.samples[(w.head+i)%nSamples] }

// last returns the newest sample.
func (w *window) last() sample { return w.sample(w.n - 1) }

// record keeps s, the counts at a slow-path visit, in the samples. Times
// and counts never go back: a visit whose clock read came before another's
// recording is recorded at the other's time, and the per-P accepts, read
// line by line, are kept monotonic by max.
//
// The newest sample follows the visits (each overwrites it) until a visit
// comes a width or more after the sample before it; that visit is
// appended, and the sample it follows is kept. So every sample is at least
// a width after the one two places before it, and the latest visit before
// a silence longer than a width is kept.
func (w *window) record(s sample) {
	l := w.last()
	s = sample{max(s.t, l.t), max(s.acc, l.acc), max(s.na, l.na)}
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

// around returns the index of the first sample after x (w.n if none: the
// next point is now). The sample before it is at or before x, when x >= 0
// (see nSamples). The samples are in time order: a binary search.
func (w *window) around(x int64) int {
	lo, hi := 0, w.n // sample(lo-1).t <= x < sample(hi).t
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if w.sample(m).t <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// at estimates the counts at x, cur being the counts at now (> x):
// linearly between the samples around x, or between the newest sample and
// (now, cur) if x is after it. That is exact where the counts between the
// two points came at an even pace.
func (w *window) at(x, now int64, cur sample) (acc, na float64) {
	if x < 0 {
		return 0, 0 // the window began before the throttle
	}
	i := w.around(x)
	if i == 0 { // not after a wrap (see nSamples); kept safe all the same
		s := w.sample(0)
		return float64(s.acc), float64(s.na)
	}
	p, q := w.sample(i-1), sample{now, cur.acc, cur.na}
	if i < w.n {
		q = w.sample(i)
	}
	f := float64(x-p.t) / float64(q.t-p.t)
	return float64(p.acc) + float64(q.acc-p.acc)*f, float64(p.na) + float64(q.na-p.na)*f
}

// counts estimates the accepts and the other requests of (now-Window,
// now], cur being the counts at now.
func (w *window) counts(now int64, cur sample) (acc, na float64) {
	a, n := w.at(now-w.win, now, cur)
	return max(0, float64(cur.acc)-a), max(0, float64(cur.na)-n)
}

// need returns the least cumulative accept count at which the probability
// is 0 now and stays 0 for as long as no request other than an accept is
// counted, cur being the counts at now and k1 being K − 1.
//
// With no new refusal or rejection, a later window [x, …] holds na −
// na(x) of them and at least acc − acc(x) accepts, where acc(x) and na(x)
// are the estimates at its start x; its probability is 0 while na − na(x)
// ≤ k1 × (acc − acc(x)), that is while acc ≥ g(x) = acc(x) + (na −
// na(x))/k1. The estimates are linear between samples, and so is g: its
// greatest value over every later start is at the start now (now−Window)
// or at a sample after it. Samples recorded later count no new refusal:
// there g ≤ acc. So need is that greatest value, and it only falls as the
// window slides (a stale need is safe).
func (w *window) need(now int64, cur sample, k1 float64) float64 {
	g := func(acc, na float64) float64 {
		d := float64(cur.na) - na
		if d <= 0 {
			return acc
		}
		if k1 == 0 {
			return math.Inf(1) // K = 1: any refusal in the window is a probability above 0
		}
		return acc + d/k1
	}
	x := now - w.win
	need := g(w.at(x, now, cur))
	i := 0
	if x >= 0 {
		i = w.around(x)
	}
	for ; i < w.n; i++ {
		s := w.sample(i)
		need = max(need, g(float64(s.acc), float64(s.na)))
	}
	return need
}
