// Command breaker shows what a seawall circuit breaker does for a service
// whose dependency fails hard.
//
// A caller sends requests at a steady rate to a simulated "account service".
// The service is healthy (≈5 ms per call), then has an outage in which every
// call hangs for ≈200 ms and then fails, then recovers. The same scenario runs
// twice, side by side and with the same requests: once calling the service
// directly, once through a breaker.New(breaker.Config{...}) breaker that trips
// when half of the last 20 calls failed, fails calls fast with
// breaker.ErrOpen for 300 ms, then lets one probe through (half-open) and
// closes again when the probe succeeds.
//
// The program prints the breaker's state changes as they happen, a table per
// phase (requests, calls that reached the service, errors from the service,
// calls failed fast by the breaker, mean caller latency, time callers spent
// waiting on errors) and a one-line conclusion. Every number is measured.
//
// Run it from the repository root (about 3 seconds):
//
//	go run ./examples/breaker
//	go run ./examples/breaker -outage 2s -rate 500 -seed 7
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
)

func main() {
	s := defaultScenario()
	flag.DurationVar(&s.Healthy, "healthy", s.Healthy, "length of the healthy phase")
	flag.DurationVar(&s.Outage, "outage", s.Outage, "length of the outage")
	flag.DurationVar(&s.Recovered, "recovered", s.Recovered, "length of the recovered phase")
	flag.IntVar(&s.Rate, "rate", s.Rate, "requests per second, all callers together")
	flag.IntVar(&s.Callers, "callers", s.Callers, "caller goroutines sharing the rate")
	flag.Uint64Var(&s.Seed, "seed", s.Seed, "seed of the service's latency jitter")
	flag.Parse()

	ctx := context.Background()
	printHeader(os.Stdout, s)
	res, err := s.run(ctx, func(e event) {
		fmt.Printf("  %6.3fs  %s\n", e.At.Seconds(), e.Text)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "breaker demo:", err)
		os.Exit(2)
	}
	fmt.Println()
	printTable(os.Stdout, res)
	fmt.Println()
	fmt.Println(conclusion(s, res))
}

// A scenario is one run of the demo: the service's phases, the request rate
// and the breaker's configuration. Its timing comes from the time package
// only, so a test can run it in a testing/synctest bubble.
type scenario struct {
	Healthy, Outage, Recovered time.Duration // phase lengths, in this order

	Rate    int    // requests per second, all callers together
	Callers int    // caller goroutines; caller i sends requests i, i+Callers, …
	Seed    uint64 // seed of the service's latency jitter

	FastLatency time.Duration // a healthy call's latency, ±10%
	SlowLatency time.Duration // a call's latency during the outage, ±10%; then it fails

	Breaker breaker.Config
}

func defaultScenario() scenario {
	return scenario{
		Healthy:     600 * time.Millisecond,
		Outage:      1200 * time.Millisecond,
		Recovered:   800 * time.Millisecond,
		Rate:        300,
		Callers:     4,
		Seed:        1,
		FastLatency: 5 * time.Millisecond,
		SlowLatency: 200 * time.Millisecond,
		Breaker: breaker.Config{
			Name:           "account-service",
			FailureRate:    0.5,
			CountWindow:    20,
			MinimumCalls:   10,
			OpenDuration:   300 * time.Millisecond,
			HalfOpenProbes: 1,
		},
	}
}

// Phases of the scenario.
const (
	healthy = iota
	outage
	recovered
	numPhases
)

var phaseNames = [numPhases]string{"healthy", "outage", "recovered"}

// phaseStats is what the callers of one variant saw in one phase. A request
// belongs to the phase in which it was sent.
type phaseStats struct {
	Requests   int           // requests sent
	ToService  int           // calls that reached the service
	Errors     int           // calls the service failed
	FailedFast int           // calls the breaker refused with breaker.ErrOpen
	Other      int           // any other outcome (a cancelled run)
	Latency    time.Duration // total caller latency, all requests
	ErrorWait  time.Duration // total caller latency of the calls the service failed
	FastWait   time.Duration // total caller latency of the calls failed fast
}

// Mean returns the mean caller latency.
func (p phaseStats) Mean() time.Duration {
	if p.Requests == 0 {
		return 0
	}
	return p.Latency / time.Duration(p.Requests)
}

// A transition is a state change of the breaker, at a time since the start.
type transition struct {
	At       time.Duration
	From, To breaker.State
}

// An event is a line of the live log, at a time since the start.
type event struct {
	At   time.Duration
	Text string
}

// variant is the outcome of one side of the run.
type variant struct {
	Phases      [numPhases]phaseStats
	Rejected    int           // errors matching seawall.ErrRejected
	RetryHinted int           // rejections carrying a retry-after hint
	MaxHint     time.Duration // the longest retry-after hint seen
	Transitions []transition  // breaker state changes, in order
	Metrics     breaker.Metrics
}

// result is the outcome of a run.
type result struct {
	Direct, Protected variant // without and with the breaker
	Events            []event // the live log, in time order
}

// errUnavailable is the error of the failing account service.
var errUnavailable = errors.New("account service: unavailable")

// A request to the account service: its number and when it was sent.
type request struct {
	ID   uint64
	Sent time.Time
}

// accountService simulates the dependency. Whether a call fails depends on
// when the request was sent (the simulation has no network, so that is when it
// arrives); its latency is jittered by a function of the seed and the
// request's number, so both variants see the same service.
type accountService struct {
	start       time.Time
	outageStart time.Duration
	outageEnd   time.Duration
	fast, slow  time.Duration
	seed        uint64
}

// GetAccount serves req: it waits (on a timer) and returns nil, or, during
// the outage, waits longer and returns errUnavailable.
func (s *accountService) GetAccount(ctx context.Context, req request) error {
	at := req.Sent.Sub(s.start)
	failing := at >= s.outageStart && at < s.outageEnd
	d := s.fast
	if failing {
		d = s.slow
	}
	// ±10%, in whole microseconds plus 500 ns: requests are sent on whole
	// microseconds, so in a synctest bubble no call ends at the instant
	// another starts, and a seed gives one outcome.
	pcg := rand.NewPCG(s.seed, req.ID)
	u := float64(pcg.Uint64()>>11) / (1 << 53)
	d = time.Duration(float64(d)*(0.9+0.2*u)).Truncate(time.Microsecond) + 500*time.Nanosecond

	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if failing {
		return errUnavailable
	}
	return nil
}

// run runs the scenario: both variants at once, each with its own service and
// callers, sending the same requests at the same times. It calls onEvent (if
// not nil) for each line of the live log as it happens, one at a time. It
// returns when every goroutine it started has finished.
func (s scenario) run(ctx context.Context, onEvent func(event)) (*result, error) {
	if s.Rate <= 0 || s.Callers <= 0 {
		return nil, fmt.Errorf("rate %d and callers %d must be positive", s.Rate, s.Callers)
	}
	if s.Healthy < 0 || s.Outage < 0 || s.Recovered < 0 {
		return nil, fmt.Errorf("phase lengths %v, %v, %v must not be negative", s.Healthy, s.Outage, s.Recovered)
	}
	interval := (time.Second / time.Duration(s.Rate)).Truncate(time.Microsecond)
	if interval <= 0 {
		return nil, fmt.Errorf("rate %d above 1000000 requests per second", s.Rate)
	}

	res := &result{}
	start := time.Now()
	var mu sync.Mutex // guards res.Events, res.Protected.Transitions, firstRejection
	logf := func(at time.Duration, format string, args ...any) {
		e := event{At: at, Text: fmt.Sprintf(format, args...)}
		mu.Lock()
		defer mu.Unlock()
		res.Events = append(res.Events, e)
		if onEvent != nil {
			onEvent(e)
		}
	}

	cfg := s.Breaker
	cfg.OnStateChange = func(c breaker.StateChange) {
		at := time.Since(start)
		mu.Lock()
		res.Protected.Transitions = append(res.Protected.Transitions, transition{At: at, From: c.From, To: c.To})
		mu.Unlock()
		logf(at, "with breaker:  %v → %v", c.From, c.To)
	}
	b, err := breaker.New(cfg)
	if err != nil {
		return nil, err
	}

	newService := func() *accountService {
		return &accountService{
			start:       start,
			outageStart: s.Healthy,
			outageEnd:   s.Healthy + s.Outage,
			fast:        s.FastLatency,
			slow:        s.SlowLatency,
			seed:        s.Seed,
		}
	}
	direct, protected := newService(), newService()
	firstRejection := false

	var wg sync.WaitGroup
	wg.Go(func() { // the narrator: announces the phases
		logf(time.Since(start), "healthy:       the account service answers in ≈%v", s.FastLatency)
		if sleepUntil(ctx, start.Add(s.Healthy)) {
			logf(time.Since(start), "outage:        every call hangs ≈%v, then fails", s.SlowLatency)
		}
		if sleepUntil(ctx, start.Add(s.Healthy+s.Outage)) {
			logf(time.Since(start), "recovered:     the account service is healthy again")
		}
	})
	wg.Go(func() {
		s.drive(ctx, start, interval, &res.Direct, direct.GetAccount, nil)
	})
	wg.Go(func() {
		s.drive(ctx, start, interval, &res.Protected, func(ctx context.Context, req request) error {
			return b.Do(ctx, func(ctx context.Context) error { return protected.GetAccount(ctx, req) })
		}, func(err error) {
			mu.Lock()
			first := !firstRejection
			firstRejection = true
			mu.Unlock()
			if first {
				hint := "no retry-after hint"
				if d, ok := seawall.RetryAfter(err); ok {
					hint = fmt.Sprintf("retry after %v", d.Round(time.Millisecond))
				}
				logf(time.Since(start), "with breaker:  first call failed fast: %q (%s)", err, hint)
			}
		})
	})
	wg.Wait()

	res.Protected.Metrics = b.Metrics()
	// Lines logged at one instant by different goroutines keep their phase
	// announcement first; the order is otherwise that of time.
	slices.SortStableFunc(res.Events, func(a, b event) int { return cmp.Compare(a.At, b.At) })
	return res, ctx.Err()
}

// drive sends the requests of one variant from s.Callers goroutines, request
// j at start + j×interval until the scenario ends, each in a goroutine of its
// own so that a slow call does not delay the next request. It records what
// the callers saw in v, each request in the phase in which it was sent, and
// returns when every call has returned.
func (s scenario) drive(ctx context.Context, start time.Time, interval time.Duration, v *variant,
	call func(context.Context, request) error, onRejected func(error)) {
	end := s.Healthy + s.Outage + s.Recovered
	var mu sync.Mutex // guards v
	record := func(sent, lat time.Duration, err error) {
		p := healthy
		if sent >= s.Healthy+s.Outage {
			p = recovered
		} else if sent >= s.Healthy {
			p = outage
		}
		mu.Lock()
		defer mu.Unlock()
		st := &v.Phases[p]
		st.Requests++
		st.Latency += lat
		if errors.Is(err, seawall.ErrRejected) {
			v.Rejected++
			if d, ok := seawall.RetryAfter(err); ok {
				v.RetryHinted++
				v.MaxHint = max(v.MaxHint, d)
			}
		}
		switch {
		case err == nil:
			st.ToService++
		case errors.Is(err, errUnavailable):
			st.ToService++
			st.Errors++
			st.ErrorWait += lat
		case errors.Is(err, breaker.ErrOpen):
			st.FailedFast++
			st.FastWait += lat
		default:
			st.Other++
		}
	}

	var callers, calls sync.WaitGroup
	for c := range s.Callers {
		callers.Go(func() {
			for j := c; ; j += s.Callers {
				at := time.Duration(j) * interval
				if at >= end || !sleepUntil(ctx, start.Add(at)) {
					return
				}
				calls.Go(func() {
					t0 := time.Now()
					err := call(ctx, request{ID: uint64(j), Sent: t0})
					lat := time.Since(t0)
					if onRejected != nil && errors.Is(err, breaker.ErrOpen) {
						onRejected(err)
					}
					record(t0.Sub(start), lat, err)
				})
			}
		})
	}
	callers.Wait() // every calls.Go has happened
	calls.Wait()
}

// sleepUntil waits until t on a timer and reports whether ctx was still
// live.
func sleepUntil(ctx context.Context, t time.Time) bool {
	if d := time.Until(t); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	return ctx.Err() == nil
}

func printHeader(w io.Writer, s scenario) {
	c := s.Breaker
	fmt.Fprintf(w, "An account service is healthy for %v, fails for %v (each call hangs ≈%v, then errors), then recovers for %v.\n",
		s.Healthy, s.Outage, s.SlowLatency, s.Recovered)
	fmt.Fprintf(w, "%d requests/s from %d callers, run twice side by side: calling it directly, and through a breaker\n",
		s.Rate, s.Callers)
	fmt.Fprintf(w, "(opens at a failure rate of %v over the last %d calls, after at least %d; stays open %v; %d half-open probe).\n\n",
		c.FailureRate, c.CountWindow, c.MinimumCalls, c.OpenDuration, max(c.HalfOpenProbes, 1))
}

func printTable(w io.Writer, res *result) {
	const row = "%-10s  %-12s  %8s  %10s  %14s  %11s  %12s  %16s\n"
	fmt.Fprintf(w, row, "phase", "variant", "requests", "to service", "service errors", "failed fast", "mean latency", "waited on errors")
	for p := range numPhases {
		for i, v := range []*variant{&res.Direct, &res.Protected} {
			name, label := phaseNames[p], "no breaker"
			if i == 1 {
				name, label = "", "with breaker"
			}
			st := v.Phases[p]
			fmt.Fprintf(w, row, name, label,
				fmt.Sprint(st.Requests), fmt.Sprint(st.ToService), fmt.Sprint(st.Errors), fmt.Sprint(st.FailedFast),
				fmt.Sprintf("%.1fms", float64(st.Mean())/float64(time.Millisecond)),
				fmt.Sprintf("%.2fs", st.ErrorWait.Seconds()))
		}
	}
}

// conclusion sums up the outage from the measured numbers.
func conclusion(s scenario, res *result) string {
	d, p := res.Direct.Phases[outage], res.Protected.Phases[outage]
	var b strings.Builder
	if p.FailedFast == 0 {
		fmt.Fprintf(&b, "The breaker failed no call fast during the outage: callers waited %.1fs on errors with it, %.1fs without.",
			p.ErrorWait.Seconds(), d.ErrorWait.Seconds())
		return b.String()
	}
	fmt.Fprintf(&b, "During the outage the breaker spared the account service %d of %d calls (%.0f%%) and its callers %.1fs of waiting (%.1fs → %.1fs)",
		p.FailedFast, p.Requests, 100*float64(p.FailedFast)/float64(max(p.Requests, 1)),
		(d.ErrorWait - p.ErrorWait).Seconds(), d.ErrorWait.Seconds(), p.ErrorWait.Seconds())
	recovery := s.Healthy + s.Outage
	closedAt := time.Duration(-1)
	for _, t := range res.Protected.Transitions {
		if t.To == breaker.Closed && t.At >= recovery {
			closedAt = t.At
			break
		}
	}
	if closedAt >= 0 {
		fmt.Fprintf(&b, "; it closed %.2fs after the recovery.", (closedAt - recovery).Seconds())
	} else {
		b.WriteString("; it had not closed again by the end.")
	}
	return b.String()
}
