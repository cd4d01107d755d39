// Command gameday runs a small game day: it injects faults into a
// dependency and shows what its caller sees, with the caller's policies
// holding the line.
//
// The dependency is an in-process HTTP server whose requests go through
// httpmw.WithFaultInjection: while the fault.Injector is enabled, 30% of
// its requests are answered 503 (without Retry-After: a failure, not a
// refusal) and 20% are delayed by 20ms, plus up to 20ms of jitter. A
// second Injector stands for an outage: every request fails. The caller
// sends requests one after another, at a steady pace, through an
// httpmw.Transport with retries (3 attempts, a budget of 10% of requests),
// a circuit breaker (trips at 50% failures of the last 50 calls, open for
// 200ms) and an attempt timeout of 100ms.
//
// The program runs four phases (faults off; faults on; an outage; faults
// off again) and prints a row per phase: requests, successes, attempts per
// request (attempts that reached the dependency, faulted or not, per
// request), retries, the faults injected, calls the breaker failed fast,
// breaker trips and its state at the end of the phase. The faults are
// drawn from a seeded source; the timing is real, so numbers may move a
// little from run to run (the test runs it in a synctest bubble, where
// they do not).
//
// Run it from the repository root (about 4 seconds):
//
//	go run ./examples/gameday
//	go run ./examples/gameday -interval 2ms -seed 7
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/httpmw"
	"github.com/seawall-go/seawall/internal/memnet"
	"github.com/seawall-go/seawall/retry"
)

func main() {
	s := defaultScenario()
	flag.DurationVar(&s.Interval, "interval", s.Interval, "time between the starts of two requests")
	flag.IntVar(&s.Requests[0], "before", s.Requests[0], "requests with faults off")
	flag.IntVar(&s.Requests[1], "during", s.Requests[1], "requests with faults on")
	flag.IntVar(&s.Requests[2], "outage", s.Requests[2], "requests during the outage")
	flag.IntVar(&s.Requests[3], "after", s.Requests[3], "requests with faults off again")
	flag.Uint64Var(&s.Seed, "seed", s.Seed, "seed of the fault injector's random numbers")
	flag.Parse()

	res, err := s.run(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "gameday:", err)
		os.Exit(2)
	}
	s.print(os.Stdout, res)
}

// A scenario is one game day. Its timing comes from the time package only,
// and its network is in memory, so a test can run it in a testing/synctest
// bubble.
type scenario struct {
	Requests [numPhases]int // requests per phase
	Interval time.Duration  // between the starts of two requests
	Timeout  time.Duration  // each request's deadline, all attempts together
	Seed     uint64

	Faults  fault.Config // the game day's faults
	Outage  fault.Config // the outage's
	Retry   retry.Config
	Breaker breaker.Config
}

const numPhases = 4

var phaseNames = [numPhases]string{"faults off", "faults on", "outage", "faults off again"}

func defaultScenario() scenario {
	return scenario{
		Requests: [numPhases]int{100, 300, 100, 100},
		Interval: 5 * time.Millisecond,
		Timeout:  time.Second,
		Seed:     1,
		Faults: fault.Config{
			ErrorRate:   0.3,
			LatencyRate: 0.2, Latency: 20 * time.Millisecond, Jitter: 20 * time.Millisecond,
		},
		Outage: fault.Config{ErrorRate: 1},
		Retry: retry.Config{
			MaxAttempts: 3, Delay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
			AttemptTimeout: 100 * time.Millisecond,
			Budget:         retry.BudgetConfig{Ratio: 0.1},
		},
		Breaker: breaker.Config{FailureRate: 0.5, CountWindow: 50, OpenDuration: 200 * time.Millisecond},
	}
}

// phase is what the caller saw in one phase.
type phase struct {
	Requests, Successes int
	Attempts            int64  // attempts that reached the dependency
	Retries             uint64 // retries the Transport made
	FailedFast          int    // requests failed fast by the open breaker
	Trips               uint64 // breaker trips (closed or half-open to open)
	End                 breaker.State
	Injected            fault.Metrics // the injector's counters in the phase
}

func (p phase) successRate() float64 { return float64(p.Successes) / float64(max(p.Requests, 1)) }
func (p phase) attemptsPerRequest() float64 {
	return float64(p.Attempts) / float64(max(p.Requests, 1))
}

// run plays the scenario and returns a phase per phase.
func (s scenario) run(ctx context.Context) ([numPhases]phase, error) {
	var res [numPhases]phase

	// The dependency: an HTTP server, with fault injection in front of a
	// handler that answers at once. attempts counts what reaches it.
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(s.Seed, 0x9a3eda1))
	faults := s.Faults
	faults.Rand = func() float64 { mu.Lock(); defer mu.Unlock(); return rnd.Float64() }
	inj, err := fault.New(faults)
	if err != nil {
		return res, err
	}
	outage, err := fault.New(s.Outage)
	if err != nil {
		return res, err
	}
	app := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	for _, inj := range []*fault.Injector{outage, inj} {
		mw, err := httpmw.NewServer(httpmw.WithFaultInjection(inj, httpmw.FaultResponse{Status: http.StatusServiceUnavailable}))
		if err != nil {
			return res, err
		}
		app = mw.Handler(app)
	}
	var attempts atomic.Int64
	ln := memnet.Listen()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		app.ServeHTTP(w, r)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return ln.Dial(ctx, network, addr)
	}}
	defer func() {
		base.CloseIdleConnections()
		srv.Close()
		<-served
	}()

	// The caller: retries with a budget, a breaker, an attempt timeout.
	group, err := breaker.NewGroup(s.Breaker, 0)
	if err != nil {
		return res, err
	}
	tr, err := httpmw.NewTransport(base, httpmw.WithRetry(s.Retry), httpmw.WithBreakers(group, httpmw.BreakerPerHost))
	if err != nil {
		return res, err
	}
	client := &http.Client{Transport: tr}
	const url = "http://dependency/"

	for ph := range numPhases {
		inj.Disable()
		outage.Disable()
		cur := inj
		switch ph {
		case 1:
			inj.Enable()
		case 2:
			outage.Enable()
			cur = outage
		}
		p := &res[ph]
		a0, r0, m0 := attempts.Load(), tr.Metrics().Retries, cur.Metrics()
		t0 := trips(group.Get("dependency").Metrics())
		start := time.Now()
		for i := range s.Requests[ph] {
			if d := time.Until(start.Add(time.Duration(i) * s.Interval)); d > 0 {
				time.Sleep(d)
			}
			ok, fast := get(ctx, client, url, s.Timeout)
			p.Requests++
			if ok {
				p.Successes++
			}
			if fast {
				p.FailedFast++
			}
		}
		m := cur.Metrics()
		bm := group.Get("dependency").Metrics()
		p.Attempts = attempts.Load() - a0
		p.Retries = tr.Metrics().Retries - r0
		p.Trips = trips(bm) - t0
		p.End = bm.State
		p.Injected = fault.Metrics{Enabled: m.Enabled, Calls: m.Calls - m0.Calls, Selected: m.Selected - m0.Selected,
			Delays: m.Delays - m0.Delays, Errors: m.Errors - m0.Errors}
	}
	return res, nil
}

// trips counts a breaker's moves to open.
func trips(m breaker.Metrics) uint64 {
	return m.Moves[breaker.Closed][breaker.Open] + m.Moves[breaker.HalfOpen][breaker.Open]
}

// get sends one request and reports whether it succeeded, and whether the
// breaker failed it fast.
func get(ctx context.Context, c *http.Client, url string, timeout time.Duration) (ok, fast bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, errors.Is(err, seawall.ErrCircuitOpen)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK, false
}

func (s scenario) print(w io.Writer, res [numPhases]phase) {
	f := s.Faults
	fmt.Fprintf(w, "game day: errors %.0f%% (503), latency %.0f%% (%v + up to %v); outage: errors %.0f%%\n",
		f.ErrorRate*100, f.LatencyRate*100, f.Latency, f.Jitter, s.Outage.ErrorRate*100)
	fmt.Fprintf(w, "caller: %d attempts, retry budget %.0f%%, attempt timeout %v, breaker at %.0f%% of %d calls\n\n",
		s.Retry.MaxAttempts, s.Retry.Budget.Ratio*100, s.Retry.AttemptTimeout, s.Breaker.FailureRate*100, s.Breaker.CountWindow)
	fmt.Fprintf(w, "%-17s %8s %8s %9s %8s %8s %11s %6s  %s\n",
		"phase", "requests", "success", "attempts", "retries", "injected", "failed fast", "trips", "breaker")
	fmt.Fprintf(w, "%-17s %8s %8s %9s %8s %8s %11s %6s  %s\n", "", "", "", "/request", "", "err/lat", "", "", "at end")
	for ph, p := range res {
		fmt.Fprintf(w, "%-17s %8d %7.1f%% %9.2f %8d %8s %11d %6d  %s\n",
			phaseNames[ph], p.Requests, 100*p.successRate(), p.attemptsPerRequest(), p.Retries,
			fmt.Sprintf("%d/%d", p.Injected.Errors, p.Injected.Delays), p.FailedFast, p.Trips, p.End)
	}
}
