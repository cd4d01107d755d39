package storm

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// A Watch measures how late the real clock's timers fire while a run on
// the real clock goes on: a machine too busy to run its timers on time
// runs the scenario's service and callers late too, and its figures then
// say more about the machine than about the strategies.
type Watch struct {
	period time.Duration
	stop   chan struct{}
	done   chan struct{}

	mu   sync.Mutex
	late []time.Duration
}

// StartWatch starts a goroutine that sets a timer of period, again and
// again, and records how late each fires, until [Watch.Stop].
func StartWatch(period time.Duration) *Watch {
	w := &Watch{period: period, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *Watch) run() {
	defer close(w.done)
	t := time.NewTimer(w.period)
	defer t.Stop()
	due := time.Now().Add(w.period)
	for {
		select {
		case <-t.C:
		case <-w.stop:
			return
		}
		now := time.Now()
		w.mu.Lock()
		w.late = append(w.late, max(now.Sub(due), 0))
		w.mu.Unlock()
		due = now.Add(w.period)
		t.Reset(w.period)
	}
}

// Stop stops the watch and returns the lateness it saw.
func (w *Watch) Stop() Lateness {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return latenessOf(w.late)
}

// Lateness is how late a Watch's timers fired, in real time.
type Lateness struct {
	Timers        int           `json:"timers"`
	P50, P99, Max time.Duration `json:"-"`
}

func latenessOf(late []time.Duration) Lateness {
	l := Lateness{Timers: len(late)}
	if len(late) == 0 {
		return l
	}
	late = slices.Clone(late)
	l.P50 = percentile(late, 0.50)
	l.P99 = percentile(late, 0.99)
	l.Max = late[len(late)-1] // percentile sorted it
	return l
}

// The self-check's limits. A real-time run's figures are trusted when its
// timers fired late by at most a fifth of a mean service time at the 99th
// percentile and a quarter of an attempt timeout at worst (in scenario
// time), and when every strategy served at least WarmupTrusted of the
// requests sent before the trigger: on an idle machine, in virtual time,
// every strategy serves more than 99.9% of them, since the warm-up's load
// is below capacity.
const WarmupTrusted = 0.999

// Check returns, in plain words, why the figures of results, a run of s on
// the real clock with timers as late as late, cannot be trusted: none if
// they can.
func Check(s Scenario, late Lateness, results []*Result) []string {
	var why []string
	scen := func(d time.Duration) time.Duration { return time.Duration(float64(d) * s.Speed) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	if late.Timers == 0 {
		why = append(why, "no timer fired during the run, so its lateness is unknown")
	}
	if p99, limit := scen(late.P99), s.ServiceTime/5; p99 > limit {
		why = append(why, fmt.Sprintf("timers fired %s late at the 99th percentile (scenario time), more than a fifth of a mean service time (%s)", ms(p99), ms(limit)))
	}
	if worst, limit := scen(late.Max), s.AttemptTimeout/4; worst > limit {
		why = append(why, fmt.Sprintf("a timer fired %s late (scenario time), more than a quarter of an attempt timeout (%s)", ms(worst), ms(limit)))
	}
	if s.TriggerAt > 0 && s.Rate < s.Capacity() {
		for _, r := range results {
			if r.Metrics.WarmupSuccess < WarmupTrusted {
				why = append(why, fmt.Sprintf("(%s) served %.1f%% of the requests sent before the trigger, below capacity, where an idle machine serves over %.1f%%",
					r.Strategy.Letter(), 100*r.Metrics.WarmupSuccess, 100*WarmupTrusted))
			}
		}
	}
	return why
}
