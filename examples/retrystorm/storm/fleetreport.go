package storm

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// DescribeFleet writes the header of a fleet run's report: the fleet, the
// load, the timeline and the variants, in words.
func DescribeFleet(w io.Writer, s Scenario, f Fleet, variants []Variant) {
	fmt.Fprintf(w, "The account service runs as %d replicas behind a load balancer, in front of one backend with %d workers\n",
		f.Replicas, s.Workers)
	fmt.Fprintf(w, "(%v mean service time: capacity %.0f requests/s, for the whole fleet) and an unbounded queue; the workers\n",
		s.ServiceTime, s.Capacity())
	fmt.Fprintf(w, "drop requests whose caller left. %d callers send %.0f requests/s (Poisson); each keeps one connection, to a\n",
		s.Callers, s.Rate)
	fmt.Fprintf(w, "replica picked at random (seed %d), as with HTTP/2 or gRPC's pick_first: callers per replica %s.\n",
		s.Seed, callersPerReplica(f.Assignment(s), f.Replicas))
	fmt.Fprintf(w, "The callers are (e)'s: backoff, a retry budget and a breaker each, honouring the replicas' retry-after hints.\n")
	if s.Trigger == Spike {
		fmt.Fprintf(w, "Trigger: a load spike: %.0f requests/s (×%g) from %v to %v.", s.Rate*s.Factor, s.Factor, secs(s.TriggerAt), secs(s.TriggerEnd()))
	} else {
		fmt.Fprintf(w, "Trigger: %s from %v to %v.", s.Trigger, secs(s.TriggerAt), secs(s.TriggerEnd()))
	}
	fmt.Fprintf(w, " Timeline: %v in all, in real time (about %v of wall time).\n",
		secs(s.Length), secs(time.Duration(float64(s.Length+s.Deadline)/s.Speed).Round(100*time.Millisecond)))
	fmt.Fprintf(w, "\nEach variant runs against its own fresh backend and replicas, side by side, with the same arrivals:\n")
	for _, v := range variants {
		rate, burst := f.limits(s, v)
		var what string
		switch v {
		case Copied:
			what = fmt.Sprintf("each replica: a local limiter of %.0f/s, bursts of %d (one instance's limit, copied)", rate, burst)
		case Split:
			what = fmt.Sprintf("each replica: a local limiter of %.0f/s, bursts of %d (the capacity ÷ %d)", rate, burst, f.Replicas)
		case Shared:
			what = fmt.Sprintf("one limit of %.0f/s, bursts of %d, that every replica asks", rate, burst)
			if f.Shared == nil {
				what += " (in process)"
			} else {
				what += fmt.Sprintf(" (in Redis: redisrate, FallbackLocal, Instances %d)", f.Replicas)
			}
		}
		fmt.Fprintf(w, "  %-21s  %s\n", v, what)
	}
}

// callersPerReplica formats how many callers each replica has, "3 1 2 2".
func callersPerReplica(assign []int, replicas int) string {
	n := make([]int, replicas)
	for _, r := range assign {
		n[r]++
	}
	return strings.Trim(fmt.Sprint(n), "[]")
}

// FleetTable writes a table of a fleet run's results, one row per variant.
func FleetTable(w io.Writer, s Scenario, results []*FleetResult) {
	const row = "%-21s  %15s  %15s  %8s  %14s  %7s  %6s  %7s\n"
	fmt.Fprintf(w, row, "", "admitted/s", "admitted in", "refused", "goodput", "p99", "wasted", "")
	fmt.Fprintf(w, row, "variant", "in spike", "busiest second", "in spike", "in spike", "latency", "work", "success")
	for _, r := range results {
		m := r.Result.Metrics
		p99 := "-"
		if m.P99 > 0 {
			p99 = fmt.Sprintf("%.0fms", float64(m.P99)/float64(time.Millisecond))
		}
		fmt.Fprintf(w, row, r.Variant,
			fmt.Sprintf("%.0f (%.2f×)", r.AdmittedRate, r.AdmittedRate/s.Capacity()),
			fmt.Sprintf("%d (%.2f×)", r.Peak, float64(r.Peak)/(s.Capacity()*PeakWindow.Seconds())),
			fmt.Sprintf("%.1f%%", 100*r.RefusedShare),
			fmt.Sprintf("%.0f/s (%.0f%%)", m.Goodput, 100*m.GoodputShare),
			p99, fmt.Sprintf("%.1f%%", 100*m.Wasted), fmt.Sprintf("%.1f%%", 100*m.Success))
	}
}

// FleetLegend explains the fleet table's columns, and each replica's
// share of the spike.
func FleetLegend(w io.Writer, s Scenario, results []*FleetResult) {
	fmt.Fprintf(w, `admitted/s in spike: attempts the replicas' limits let through to the backend per second during the spike, all
replicas together (× the backend's capacity, %.0f/s).  admitted in busiest second: the most they let through in one
second of the run (any 1s window).  refused in spike: share of the attempts reaching a replica during the spike
that its limit refused.  goodput: successful requests per second among those sent during the spike (%% of what is
achievable, %.0f/s).  p99 latency: of those requests' successes.  wasted work: share of the backend's busy time
spent on requests whose caller had given up.  success: of all requests.
`, s.Capacity(), s.Achievable())
	fmt.Fprintf(w, "\nper replica during the spike (callers: attempts → admitted):\n")
	for _, r := range results {
		var b strings.Builder
		for i, rp := range r.Replicas {
			if i > 0 {
				b.WriteString("   ")
			}
			fmt.Fprintf(&b, "#%d %d: %d → %d", i, rp.Callers, rp.Attempts, rp.Admitted)
		}
		fmt.Fprintf(w, "  %-21s  %s\n", r.Variant, b.String())
	}
}

// FleetSparklines writes the rate the replicas admitted to the backend
// over time, one line per variant, one character per 500ms: ▄ is the
// backend's capacity, █ twice it or more.
func FleetSparklines(w io.Writer, s Scenario, results []*FleetResult) {
	const step = 500 * time.Millisecond
	per := int(step / BinWidth)
	n := int((s.Length + step - 1) / step)
	fmt.Fprintf(w, "admitted to the backend over time (one character per %v: ▄ the capacity, %.0f/s; █ twice it or more)\n", step, s.Capacity())
	full := s.Capacity() * step.Seconds()
	for _, r := range results {
		var b strings.Builder
		for i := range n {
			sum := 0
			for j := i * per; j < min((i+1)*per, len(r.AdmittedTimeline)); j++ {
				sum += r.AdmittedTimeline[j]
			}
			// ▄ (level 4 of 8) is the capacity.
			lvl := int(math.Round(float64(sum) / full * 4))
			b.WriteRune(sparks[min(lvl, len(sparks)-1)])
		}
		fmt.Fprintf(w, "  %-21s │%s│\n", r.Variant, b.String())
	}
	mark := []rune(strings.Repeat(" ", n))
	for i := range mark {
		if t := time.Duration(i) * step; t >= s.TriggerAt && t < s.TriggerEnd() {
			mark[i] = '^'
		}
	}
	fmt.Fprintf(w, "  %-21s  %s spike\n", "", string(mark))
}
