package storm

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
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
	p := s.Derived()
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
		floor := "1 a window"
		if b.MinRetriesPerSecond != 0 {
			floor = fmt.Sprintf("%g/s", b.MinRetriesPerSecond)
		}
		if b.NoFloor {
			return fmt.Sprintf("+ a retry budget per caller: retries ≤ %.0f%% of requests, over %v", 100*orDefault(b.Ratio, 0.1), secs(b.Window))
		}
		return fmt.Sprintf("+ a retry budget per caller: retries ≤ %.0f%% of requests over %v, + %s while the caller mostly succeeds",
			100*orDefault(b.Ratio, 0.1), secs(b.Window), floor)
	case Breaker:
		b := p.Breaker
		win := fmt.Sprintf("the last %d calls", b.CountWindow)
		if b.TimeWindow > 0 {
			win = "the last " + secs(b.TimeWindow)
		}
		return fmt.Sprintf("+ a circuit breaker per caller: opens at %.0f%% failures over %s, for %v", 100*b.FailureRate, win, b.OpenDuration)
	case ServerSide:
		return fmt.Sprintf("+ at the service: a limiter (%.0f/s, bursts of %d), a bulkhead (%d at once, %d may wait ≤ %v); it drops requests whose caller left",
			p.Limiter.Rate, p.Limiter.Burst, p.Bulkhead.MaxConcurrent, p.Bulkhead.MaxWaiting, p.Bulkhead.MaxWait)
	case Adaptive:
		return "(e) + a client-side throttle per caller; at the service, an adaptive concurrency limit (no fixed limit); it drops requests whose caller left"
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
		rec := recovery(m.Recovery)
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

// recovery formats a Metrics.Recovery.
func recovery(d time.Duration) string {
	switch d {
	case Never:
		return "never"
	case NoRecovery:
		return "n/a"
	}
	return secs(d)
}

// A SweepRow is one variant of a sweep: its name, its scenario and its
// strategies' results.
type SweepRow struct {
	Name     string
	Scenario Scenario
	Results  []*Result
}

// SweepTable writes the results of a sweep: for each variant, each
// strategy's amplification during the trigger and after it, goodput as a
// share of what is achievable, p99 latency and time to recover.
func SweepTable(w io.Writer, rows []SweepRow) {
	const row = "%-21s  %8s  %6s  %8s  %7s  %7s\n"
	for i, r := range rows {
		if i > 0 {
			fmt.Fprintln(w)
		}
		s := r.Scenario
		fmt.Fprintf(w, "%s — %d callers, %.0f/s on a capacity of %.0f/s, achievable %.0f/s\n", r.Name, s.Callers, s.Rate, s.Capacity(), s.Achievable())
		fmt.Fprintf(w, row, "strategy", "amp trig", "after", "goodput", "p99", "recover")
		for _, res := range r.Results {
			m := res.Metrics
			p99 := "-"
			if m.P99 > 0 {
				p99 = fmt.Sprintf("%.0fms", float64(m.P99)/float64(time.Millisecond))
			}
			fmt.Fprintf(w, row, res.Strategy, fmt.Sprintf("%.2f×", m.AmpTrigger), fmt.Sprintf("%.2f×", m.AmpAfter),
				fmt.Sprintf("%.0f%%", 100*m.GoodputShare), p99, recovery(m.Recovery))
		}
	}
}

// Legend explains the table's columns.
func Legend(w io.Writer, s Scenario) {
	fmt.Fprintf(w, `amplification: attempts that reached the service ÷ requests, for the requests sent during the trigger and after it.
goodput: successful requests per second among those sent during the trigger (%% of what is achievable: the capacity
then or the load offered, whichever is less, %.0f/s).  p99 latency: of the successful requests sent during the trigger.
wasted work: share of the service's busy time spent on requests whose caller had given up.  time to recover: from
the end of the trigger until every later %v window has ≥ %.0f%% success ("never": not by the end; "n/a": the base
load is not below capacity).  success: of all requests.
`, s.Achievable(), RecoveryWindow, 100*RecoverySuccess)
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

// colors, dashes and layers are the strategies' line styles in the chart,
// indexed by Strategy; the lines of a higher layer are drawn over those of
// lower ones. (b) is dashed and drawn over (c), itself drawn over the
// others, so that where the lines of (b) and (c) coincide both show. A
// strategy past the end of a table is drawn black, solid, in layer 0.
var (
	colors = []string{"#7f7f7f", "#d62728", "#ff7f0e", "#bcbd22", "#1f77b4", "#2ca02c", "#9467bd"}
	dashes = []string{Naive: "7 4"}
	layers = []int{Naive: 2, Backoff: 1}
)

// styleAt returns table[st], or the zero value past its end.
func styleAt[T any](table []T, st Strategy) T {
	var v T
	if st >= 0 && int(st) < len(table) {
		v = table[st]
	}
	return v
}

// stroke returns the stroke attributes of a strategy's lines in the chart.
func stroke(st Strategy, width float64) string {
	c, d := styleAt(colors, st), styleAt(dashes, st)
	if c == "" {
		c = "#000000"
	}
	a := fmt.Sprintf(`stroke="%s" stroke-width="%g"`, c, width)
	if d != "" {
		a += fmt.Sprintf(` stroke-dasharray="%s"`, d)
	}
	return a
}

// SVG writes a chart of the run in two panels over the time the requests
// were sent, a point per RecoveryWindow of it, the trigger window shaded
// across both: above, each strategy's success rate, with the recovery
// threshold (RecoverySuccess); below, the attempts per second that reached
// each strategy's service (counted when their request was sent), against
// the service's capacity.
func SVG(w io.Writer, s Scenario, results []*Result) error {
	const (
		width, height = 960, 590
		left, right   = 84, 210
		top1, h1      = 62, 240  // the success rate
		top2, h2      = 320, 210 // the attempts
		pad           = 6        // keeps the lines at 0 and at the top clear of the frame
	)
	pw := float64(width - left - right)
	length := s.Length.Seconds()
	x := func(t float64) float64 { return left + pw*t/length }
	from, to := x(s.TriggerAt.Seconds()), x(s.TriggerEnd().Seconds())
	slowdown := s.Trigger == Slowdown && s.TriggerFor > 0

	// A point per RecoveryWindow of the timeline, at its middle.
	type point struct{ t, v float64 }
	per := int(RecoveryWindow / BinWidth)
	success := make([][]point, len(results))
	attempts := make([][]point, len(results))
	peak := s.Capacity()
	for i, r := range results {
		for j := 0; j < len(r.Timeline); j += per {
			bins := r.Timeline[j:min(j+per, len(r.Timeline))]
			var req, ok, att int
			for _, b := range bins {
				req, ok, att = req+b.Requests, ok+b.Successes, att+b.Attempts
			}
			t := min((time.Duration(j)*BinWidth + RecoveryWindow/2).Seconds(), length)
			rate := float64(att) / (time.Duration(len(bins)) * BinWidth).Seconds()
			attempts[i] = append(attempts[i], point{t, rate})
			peak = max(peak, rate)
			if req > 0 {
				success[i] = append(success[i], point{t, float64(ok) / float64(req)})
			}
		}
	}
	// The attempts' axis: up to a round number above the peak.
	step := math.Pow(10, math.Floor(math.Log10(peak/4)))
	for _, m := range []float64{1, 2, 5, 10} {
		if peak*1.05/(step*m) <= 8 {
			step *= m
			break
		}
	}
	ymax := math.Ceil(peak*1.05/step) * step
	y1 := func(v float64) float64 { return top1 + pad + (h1-2*pad)*(1-v) }
	y2 := func(v float64) float64 { return top2 + h2 - pad - (h2-2*pad)*v/ymax }

	var b strings.Builder
	text := func(x, y float64, attrs, s string) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" %s>%s</text>`+"\n", x, y, attrs, html.EscapeString(s))
	}
	const halo = `paint-order="stroke" stroke="white" stroke-width="4" stroke-linejoin="round"`
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	title := fmt.Sprintf("Retry storm: %d callers, %.0f req/s, capacity %.0f/s", s.Callers, s.Rate, s.Capacity())
	band := ""
	switch s.Trigger {
	case Spike:
		title += fmt.Sprintf(", load ×%g from %v to %v", s.Factor, secs(s.TriggerAt), secs(s.TriggerEnd()))
		band = fmt.Sprintf("spike: %.0f req/s", s.Rate*s.Factor)
	case Slowdown:
		title += fmt.Sprintf(", capacity ÷%g from %v to %v", s.Factor, secs(s.TriggerAt), secs(s.TriggerEnd()))
		band = fmt.Sprintf("slowdown: capacity %.0f/s", s.Capacity()/s.Factor)
	}
	text(left, 24, `font-size="15" font-weight="bold"`, fmt.Sprintf("%s; seed %d", title, s.Seed))
	if s.TriggerFor > 0 && band != "" {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f4cccc" opacity="0.6"/>`+"\n",
			from, top1, to-from, top2+h2-top1)
		text((from+to)/2, top1-6, `text-anchor="middle" fill="#a33"`, band)
	}

	// The axes and the grids.
	for t := 0.0; t <= length+1e-9; t += 5 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n",
			x(t), top1, x(t), top1+h1, x(t), top2, x(t), top2+h2)
		text(x(t), top2+h2+18, `text-anchor="middle"`, fmt.Sprintf("%gs", t))
	}
	text(x(length/2), height-10, `text-anchor="middle"`, "time the request was sent (scenario time); a point per "+secs(RecoveryWindow))
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, y1(v), x(length), y1(v))
		text(left-6, y1(v)+4, `text-anchor="end"`, fmt.Sprintf("%.0f%%", 100*v))
	}
	for v := 0.0; v <= ymax+1e-9; v += step {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, y2(v), x(length), y2(v))
		text(left-6, y2(v)+4, `text-anchor="end"`, fmt.Sprintf("%.0f", v))
	}
	rotated := func(x, y float64, s string) {
		text(x, y, fmt.Sprintf(`text-anchor="middle" transform="rotate(-90 %.1f %.1f)"`, x, y), s)
	}
	rotated(22, top1+h1/2, "success rate of the requests sent")
	rotated(22, top2+h2/2, "attempts/s reaching the service")
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#333"/>`+"\n", left, top1, pw, h1)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#333"/>`+"\n", left, top2, pw, h2)
	text(left+8, top2+16, `font-size="11" fill="#555" `+halo, "counted at the time their request was sent, not when they reached the service")

	// The service's capacity, and the threshold of recovery.
	capa := fmt.Sprintf("M%.1f,%.1f", x(0), y2(s.Capacity()))
	if slowdown {
		capa += fmt.Sprintf(" H%.1f V%.1f H%.1f V%.1f", from, y2(s.TriggerCapacity()), to, y2(s.Capacity()))
	}
	fmt.Fprintf(&b, `<path class="capacity" d="%s H%.1f" fill="none" stroke="#000" stroke-width="1.5"/>`+"\n", capa, x(length))
	fmt.Fprintf(&b, `<line class="threshold" x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="2 3"/>`+"\n",
		left, y1(RecoverySuccess), x(length), y1(RecoverySuccess))

	// The strategies, layer by layer.
	for layer := range slices.Max(layers) + 1 {
		for i, r := range results {
			if styleAt(layers, r.Strategy) != layer {
				continue
			}
			var ps, pa []string
			for _, p := range success[i] {
				ps = append(ps, fmt.Sprintf("%.1f,%.1f", x(p.t), y1(p.v)))
			}
			for _, p := range attempts[i] {
				pa = append(pa, fmt.Sprintf("%.1f,%.1f", x(p.t), y2(p.v)))
			}
			fmt.Fprintf(&b, `<polyline class="success" fill="none" stroke-linejoin="round" %s points="%s"/>`+"\n", stroke(r.Strategy, 2), strings.Join(ps, " "))
			if len(pa) > 0 {
				fmt.Fprintf(&b, `<path class="attempts" fill="none" stroke-linejoin="round" %s d="M%s"/>`+"\n", stroke(r.Strategy, 2), strings.Join(pa, " "))
			}
		}
	}
	// Labels over the lines.
	text(x(length)-6, y1(RecoverySuccess)+14, `text-anchor="end" `+halo,
		fmt.Sprintf("%.0f%% success: the recovery threshold", 100*RecoverySuccess))
	text(x(length)-6, y2(s.Capacity())-6, `text-anchor="end" `+halo, fmt.Sprintf("service capacity %.0f/s", s.Capacity()))
	if slowdown {
		text((from+to)/2, y2(s.TriggerCapacity())+15, `text-anchor="middle" `+halo,
			fmt.Sprintf("capacity %.0f/s", s.TriggerCapacity()))
	}

	// The legend.
	for i, r := range results {
		ly := float64(top1 + 10 + 22*i)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" %s/>`, width-right+15, ly, width-right+45, ly, stroke(r.Strategy, 3))
		text(width-right+52, ly+4, "", r.Strategy.String())
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
