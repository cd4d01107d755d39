package storm

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Describe writes the header of a report: the scenario, the timeline and
// the strategies, in words.
func Describe(w io.Writer, s Scenario, strategies []Strategy) {
	fmt.Fprintf(w, "An account service with %d workers (%v mean service time: capacity %.0f requests/s) and an unbounded queue\n",
		s.Workers, s.ServiceTime, s.Capacity())
	fmt.Fprintf(w, "gets %.0f requests/s (Poisson) from %d callers. Each request has a %v deadline; each attempt times out after %v.\n",
		s.Rate, s.Callers, s.Deadline, s.AttemptTimeout)
	switch s.Trigger {
	case Spike:
		fmt.Fprintf(w, "Trigger: a load spike: %.0f requests/s (×%g) from %v to %v.\n",
			s.Rate*s.Factor, s.Factor, secs(s.TriggerAt), secs(s.TriggerEnd()))
	case Slowdown:
		fmt.Fprintf(w, "Trigger: a capacity drop: every request takes %g× longer (capacity %.0f/s) from %v to %v.\n",
			s.Factor, s.Capacity()/s.Factor, secs(s.TriggerAt), secs(s.TriggerEnd()))
	default:
		fmt.Fprintf(w, "Trigger: none (a baseline).\n")
	}
	fmt.Fprintf(w, "Timeline: %v of warm-up, %v of trigger, %v after it; %v in all.",
		secs(s.TriggerAt), secs(s.TriggerFor), secs(s.Length-s.TriggerEnd()), secs(s.Length))
	wall := secs(time.Duration(float64(s.Length+s.Deadline) / s.Speed).Round(100 * time.Millisecond))
	switch {
	case s.Speed > 1:
		fmt.Fprintf(w, " Run %g× faster than real time (about %v of wall time);\nall times below are scenario times.", s.Speed, wall)
	case s.Speed < 1:
		fmt.Fprintf(w, " Run %.3g× slower than real time (about %v of wall time);\nall times below are scenario times.", 1/s.Speed, wall)
	case s.HTTP:
		fmt.Fprintf(w, " Run in real time (about %v of wall time).", wall)
	}
	if s.HTTP {
		fmt.Fprintf(w, "\nOver loopback HTTP (h2c): each service is an http.Server on 127.0.0.1, its callers are http.Clients whose\n"+
			"Transport is seawall's httpmw.Transport; the server-side protection of (f) is an httpmw.Server with a deadline, a rate limit and load shedding.")
	}
	fmt.Fprintf(w, "\n\nEach strategy runs against its own fresh service, side by side, with the same arrivals:\n")
	for _, st := range strategies {
		fmt.Fprintf(w, "  %-21s  %s\n", st, s.explain(st))
	}
}

// explain describes a strategy's configuration in a line.
func (s Scenario) explain(st Strategy) string {
	p := s.Policies
	switch st {
	case NoRetry:
		return "one attempt per request"
	case Naive:
		return fmt.Sprintf("retry at once after a failure, up to %d attempts", s.MaxAttempts)
	case Backoff:
		return fmt.Sprintf("retry after random delays in [0, %v], [0, %v], … (exponential backoff, full jitter)", p.Delay, 2*p.Delay)
	case Budget:
		b := scaleBudget(p.Budget, 1)
		if b.Mode == "tokens" {
			return "+ a retry budget per caller (gRPC-style token throttling)"
		}
		return fmt.Sprintf("+ a retry budget per caller: retries ≤ %.0f%% of requests + %g/s, over %v", 100*orDefault(b.Ratio, 0.1), b.MinRetriesPerSecond, secs(b.Window))
	case Breaker:
		b := p.Breaker
		win := fmt.Sprintf("the last %d calls", b.CountWindow)
		if b.TimeWindow > 0 {
			win = "the last " + secs(b.TimeWindow)
		}
		return fmt.Sprintf("+ a circuit breaker per caller: opens at %.0f%% failures over %s, for %v", 100*b.FailureRate, win, b.OpenDuration)
	case ServerSide:
		return fmt.Sprintf("+ at the service: a limiter (%.0f/s), a bulkhead (%d at once, %d may wait ≤ %v); it drops requests whose caller left",
			p.Limiter.Rate, p.Bulkhead.MaxConcurrent, p.Bulkhead.MaxWaiting, p.Bulkhead.MaxWait)
	}
	return ""
}

func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

// secs formats a duration in seconds, "12.5s".
func secs(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", d.Seconds()), "0"), ".") + "s"
}

// Table writes a table of the results, one row per strategy.
func Table(w io.Writer, s Scenario, results []*Result) {
	trig := "spike"
	switch s.Trigger {
	case Slowdown:
		trig = "drop"
	case None:
		trig = "window"
	}
	const row = "%-21s  %7s  %7s  %14s  %9s  %7s  %9s  %8s\n"
	fmt.Fprintf(w, "%-21s  %16s  %14s  %9s  %7s  %9s  %8s\n", "", "amplification", "goodput", "p99", "wasted", "time to", "")
	fmt.Fprintf(w, row, "strategy", "in "+trig, "after", "in "+trig, "latency", "work", "recover", "success")
	for _, r := range results {
		m := r.Metrics
		rec := "never"
		if m.Recovery != Never {
			rec = secs(m.Recovery)
		}
		p99 := "-"
		if m.P99 > 0 {
			p99 = fmt.Sprintf("%.0fms", float64(m.P99)/float64(time.Millisecond))
		}
		fmt.Fprintf(w, row, r.Strategy,
			fmt.Sprintf("%.2f×", m.AmpTrigger), fmt.Sprintf("%.2f×", m.AmpAfter),
			fmt.Sprintf("%.0f/s (%.0f%%)", m.Goodput, 100*m.GoodputShare),
			p99, fmt.Sprintf("%.1f%%", 100*m.Wasted), rec, fmt.Sprintf("%.1f%%", 100*m.Success))
	}
}

// Legend explains the table's columns.
func Legend(w io.Writer, s Scenario) {
	fmt.Fprintf(w, `amplification: attempts that reached the service ÷ requests, for the requests sent during the trigger and after it.
goodput: successful requests per second among those sent during the trigger (%% of the capacity then, %.0f/s).
p99 latency: of the successful requests sent during the trigger.  wasted work: share of the service's busy time
spent on requests whose caller had given up.  time to recover: from the end of the trigger until every later %v
window has ≥ %.0f%% success ("never": not by the end).  success: of all requests.
`, s.TriggerCapacity(), RecoveryWindow, 100*RecoverySuccess)
}

// sparks are the levels of a sparkline, from 0 to 100%.
var sparks = []rune(" ▁▂▃▄▅▆▇█")

// Sparklines writes the success rate over time, one line per strategy, one
// character per second, with the trigger window marked underneath.
func Sparklines(w io.Writer, s Scenario, results []*Result) {
	per := int(time.Second / BinWidth)
	n := (len(results[0].Timeline) + per - 1) / per
	fmt.Fprintf(w, "success rate over time (one character per second: ' ' 0%%, ▁ to █ up to 100%%)\n")
	for _, r := range results {
		var b strings.Builder
		for i := range n {
			var req, ok int
			for _, bin := range r.Timeline[i*per : min((i+1)*per, len(r.Timeline))] {
				req += bin.Requests
				ok += bin.Successes
			}
			lvl := len(sparks) - 1
			if req > 0 {
				lvl = int(math.Floor(float64(ok) / float64(req) * float64(len(sparks)-1)))
			}
			b.WriteRune(sparks[lvl])
		}
		fmt.Fprintf(w, "  %-21s │%s│\n", r.Strategy, b.String())
	}
	mark := []rune(strings.Repeat(" ", n))
	for i := range mark {
		if t := time.Duration(i) * time.Second; t >= s.TriggerAt && t < s.TriggerEnd() {
			mark[i] = '^'
		}
	}
	label := "trigger"
	if s.Trigger == Spike {
		label = "spike"
	} else if s.Trigger == Slowdown {
		label = "capacity drop"
	}
	fmt.Fprintf(w, "  %-21s  %s %s\n", "", string(mark), label)
}

// colors of the strategies' lines in the chart.
var colors = [NumStrategies]string{"#7f7f7f", "#d62728", "#ff7f0e", "#bcbd22", "#1f77b4", "#2ca02c"}

// SVG writes a chart of the success rate over time (per 500ms of sending
// time), one line per strategy, with the trigger window shaded.
func SVG(w io.Writer, s Scenario, results []*Result) error {
	const (
		width, height          = 960, 420
		left, right, top, bott = 60, 220, 40, 50
	)
	pw, ph := float64(width-left-right), float64(height-top-bott)
	length := s.Length.Seconds()
	x := func(t float64) float64 { return left + pw*t/length }
	y := func(v float64) float64 { return top + ph*(1-v) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	title := fmt.Sprintf("Success rate over time: %.0f req/s, capacity %.0f/s", s.Rate, s.Capacity())
	switch s.Trigger {
	case Spike:
		title += fmt.Sprintf(", load ×%g from %v to %v", s.Factor, secs(s.TriggerAt), secs(s.TriggerEnd()))
	case Slowdown:
		title += fmt.Sprintf(", capacity ÷%g from %v to %v", s.Factor, secs(s.TriggerAt), secs(s.TriggerEnd()))
	}
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">%s</text>`+"\n", left, html.EscapeString(title))
	if s.TriggerFor > 0 && s.Trigger != None {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.0f" fill="#f4cccc" opacity="0.6"/>`+"\n",
			x(s.TriggerAt.Seconds()), top, x(s.TriggerEnd().Seconds())-x(s.TriggerAt.Seconds()), ph)
	}
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 0.95, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, y(v), x(length), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left-6, y(v)+4, 100*v)
	}
	step := 5.0
	for t := 0.0; t <= length+1e-9; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%gs</text>`+"\n", x(t), height-bott+18, t)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">time the request was sent (scenario time)</text>`+"\n", x(length/2), height-12)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	per := int(RecoveryWindow / BinWidth)
	for i, r := range results {
		var pts []string
		for j := 0; j < len(r.Timeline); j += per {
			var req, ok int
			for _, bin := range r.Timeline[j:min(j+per, len(r.Timeline))] {
				req += bin.Requests
				ok += bin.Successes
			}
			if req == 0 {
				continue
			}
			t := (time.Duration(j)*BinWidth + RecoveryWindow/2).Seconds()
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(min(t, length)), y(float64(ok)/float64(req))))
		}
		c := colors[r.Strategy%NumStrategies]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		ly := top + 10 + 22*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`, width-right+15, ly, width-right+40, ly, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", width-right+46, ly+4, html.EscapeString(r.Strategy.String()))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// AttemptCounts writes, for runs over HTTP (Scenario.HTTP), the attempts
// each strategy's callers sent, those that reached the service (the ones
// its protection refused or dropped included), and those refused or
// dropped.
func AttemptCounts(w io.Writer, results []*Result) {
	fmt.Fprintf(w, "%-21s  %9s  %9s  %9s  %9s\n", "attempts over HTTP", "sent", "reached", "refused", "dropped")
	for _, r := range results {
		reached := 0
		for _, rec := range r.Records {
			reached += rec.Attempts
		}
		fmt.Fprintf(w, "%-21s  %9d  %9d  %9d  %9d\n", r.Strategy, r.AttemptsSent, reached, r.Service.Shed, r.Service.Dropped)
	}
}
