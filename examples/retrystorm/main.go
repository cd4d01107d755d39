// Command retrystorm shows a retry storm, and what seawall does about it.
//
// A login/account service with a fixed capacity sits behind every other
// service. A launch spike doubles its traffic for a few seconds. Callers
// time out and retry; retries multiply the load; long after the spike is
// over the service is still drowning in retries of requests nobody is
// waiting for (a metastable failure). The same spike, the same arrivals,
// run against seven strategies side by side, each with its own fresh
// service: (a) no retries, (b) naive immediate retries, (c) exponential
// backoff with full jitter, (d) + a seawall retry budget, (e) + a seawall
// circuit breaker, (f) + seawall's server-side protection at the service
// (a rate limiter, a bulkhead, and dropping requests whose caller left),
// and (g), seawall with no hand-sized limit: (e) with a client-side
// throttle per caller, and an adaptive concurrency limit at the service.
// The scenario, the strategies and every metric are described in package
// [github.com/seawall-go/seawall/examples/retrystorm/storm].
//
// The program prints the scenario, a table per strategy (amplification,
// goodput during the spike, p99 latency, wasted work, time to recover), the
// success rate over time as one line per strategy, and writes an SVG chart
// of it to a file whose path it prints. The 35 seconds of the scenario run
// in real time by default (-speed), in about 36 seconds. The run checks
// itself (storm.Check): when its timers fired too late, or a strategy
// failed requests before the trigger, the machine was too busy for the
// figures to mean anything; the program says so at the end and exits with
// status 1, unless -allow-busy.
//
// With -http, each strategy's service runs as a real HTTP server on the
// loopback interface (HTTP/2 without TLS), and its callers call it through
// http.Clients whose Transport is seawall's httpmw.Transport; the
// server-side protection of (f) is httpmw's middleware. Every attempt
// crosses a real socket, which costs far more than a call in process: this
// mode runs at a quarter speed (-speed 0.25 unless set), in about 144 seconds.
//
// With -status addr, the run registers every strategy's policies (see
// storm.Scenario.Registry) and serves seawall's status page (package
// [github.com/seawall-go/seawall/status]) at http://addr/debug/seawall/
// while it runs, to watch the storm: breakers opening, budgets running dry,
// the service shedding. The page is read-only.
//
// With -fleet, the account service runs as -replicas replicas (4) in
// front of one backend of the same capacity, with callers spread unevenly
// over them, and three ways of limiting it side by side: (1) a local
// limiter at the capacity on each replica, (2) one at the capacity ÷ the
// replicas on each, (3) one limit shared in Redis (package
// [github.com/seawall-go/seawall/ratelimit/redisrate]). It starts its own
// redis-server (a free loopback port, no persistence) if one is on the
// PATH, and stops it at exit; -redis ADDR uses an existing Redis instead.
// The run is 10s of real time (see storm.DefaultFleet). This is why the
// demo is a module of its own: the root module does not require go-redis.
//
// Run it from the repository root:
//
//	go run ./examples/retrystorm
//	go run ./examples/retrystorm -fleet
//	go run ./examples/retrystorm -fleet -replicas 8 -redis localhost:6379
//	go run ./examples/retrystorm -status localhost:8080
//	go run ./examples/retrystorm -http
//	go run ./examples/retrystorm -trigger slowdown -strategies a,d,f
//	go run ./examples/retrystorm -format json > storm.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/seawall-go/seawall/examples/retrystorm/storm"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/status"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "retrystorm:", err)
		if errors.Is(err, errBusy) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

// errBusy is run's error when the self-check found the machine too busy
// for the figures to mean anything: the program exits with status 1 (2
// for any other error).
var errBusy = errors.New("the machine was too busy for the figures to mean anything (see above; -allow-busy to exit 0)")

func run(args []string, stdout, stderr io.Writer) error {
	s := storm.Default()
	s.Slack = time.Millisecond
	fs := flag.NewFlagSet("retrystorm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&s.Callers, "callers", s.Callers, "caller instances, each with its own retry budget and breaker")
	fs.Float64Var(&s.Rate, "rate", s.Rate, "base load: requests per second, all callers together")
	trigger := fs.String("trigger", string(s.Trigger), `what happens during the trigger: "spike" (load × factor), "slowdown" (capacity ÷ factor) or "none"`)
	fs.Float64Var(&s.Factor, "factor", s.Factor, "the trigger's factor")
	fs.DurationVar(&s.TriggerAt, "warmup", s.TriggerAt, "when the trigger starts (the warm-up before it)")
	fs.DurationVar(&s.TriggerFor, "trigger-for", s.TriggerFor, "how long the trigger lasts")
	fs.DurationVar(&s.Length, "length", s.Length, "how long requests are sent, in all")
	fs.IntVar(&s.Workers, "workers", s.Workers, "the service's workers")
	fs.DurationVar(&s.ServiceTime, "service-time", s.ServiceTime, "the service's mean service time (exponential)")
	fs.DurationVar(&s.Deadline, "deadline", s.Deadline, "each request's deadline")
	fs.DurationVar(&s.AttemptTimeout, "attempt-timeout", s.AttemptTimeout, "each attempt's timeout")
	fs.IntVar(&s.MaxAttempts, "attempts", s.MaxAttempts, "attempts per request at most, the first included")
	strategies := fs.String("strategies", "all", `strategies to run: letters a to g ("a,d,g"), or "all"`)
	fs.Uint64Var(&s.Seed, "seed", s.Seed, "seed of the arrivals and service times")
	fs.Float64Var(&s.Speed, "speed", s.Speed, "how many times faster than real time to run (1: real time)")
	fs.DurationVar(&s.Slack, "slack", s.Slack, "real time a worker's hand-offs may take without costing the service capacity")
	p := &s.Policies
	fs.DurationVar(&p.Delay, "backoff", p.Delay, "(c)-(g): the first retry's backoff (full jitter; each further one doubles)")
	fs.Float64Var(&p.Budget.Ratio, "budget-ratio", p.Budget.Ratio, "(d)-(g): the retry budget's ratio of retries to requests (0: retry's default)")
	fs.DurationVar(&p.Budget.Window, "budget-window", p.Budget.Window, "(d)-(g): the retry budget's window (0: retry's default)")
	fs.Float64Var(&p.Budget.MinRetriesPerSecond, "budget-floor", p.Budget.MinRetriesPerSecond, "(d)-(g): the retry budget's floor, retries per second (0: retry's default)")
	fs.Float64Var(&p.Breaker.FailureRate, "breaker-rate", p.Breaker.FailureRate, "(e)-(g): the failure rate that opens a caller's breaker")
	fs.DurationVar(&p.Breaker.TimeWindow, "breaker-window", p.Breaker.TimeWindow, "(e)-(g): the breaker's time window (0: use -breaker-calls)")
	fs.IntVar(&p.Breaker.CountWindow, "breaker-calls", p.Breaker.CountWindow, "(e)-(g): the breaker's count window, in calls, in place of its time window")
	fs.IntVar(&p.Breaker.MinimumCalls, "breaker-min", p.Breaker.MinimumCalls, "(e)-(g): the calls the breaker's window holds before it may open")
	fs.DurationVar(&p.Breaker.OpenDuration, "breaker-open", p.Breaker.OpenDuration, "(e)-(g): how long an open breaker stays open")
	fs.Float64Var(&p.Limiter.Rate, "limit-rate", p.Limiter.Rate, "(f): the service's rate limit, per second (0: its capacity, workers ÷ service time)")
	fs.IntVar(&p.Limiter.Burst, "limit-burst", p.Limiter.Burst, "(f): the rate limit's burst (0: the bulkhead's room, concurrent + waiting)")
	fs.IntVar(&p.Bulkhead.MaxConcurrent, "bulkhead", p.Bulkhead.MaxConcurrent, "(f): the service's bulkhead, requests at once (0: one per worker)")
	fs.IntVar(&p.Bulkhead.MaxWaiting, "bulkhead-queue", p.Bulkhead.MaxWaiting, "(f): requests that may wait for the bulkhead (0: one per worker)")
	fs.DurationVar(&p.Bulkhead.MaxWait, "bulkhead-wait", p.Bulkhead.MaxWait, "(f): how long a request may wait for the bulkhead (0: 5 mean service times)")
	allowBusy := fs.Bool("allow-busy", false, "exit 0 even when the self-check finds the machine was too busy for the figures to mean anything")
	httpMode := fs.Bool("http", false, "run over real loopback HTTP: each strategy's service behind an http.Server (h2c), its callers\n"+
		"http.Clients with seawall's httpmw Transport, (f)'s and (g)'s protection httpmw's middleware; at -speed 0.25 unless set")
	format := fs.String("format", "table", `output: "table" or "json"`)
	statusAddr := fs.String("status", "", `serve the status page of the run's policies at http://ADDR/debug/seawall/ while it runs ("localhost:8080"; "" for none)`)
	fleet := fs.Bool("fleet", false, "run the fleet variant: the service as -replicas replicas in front of one backend, with a local limit\n"+
		"on each (at the capacity, or its share) and one limit shared in Redis (a redis-server of its own, or -redis); 10s by default")
	replicas := fs.Int("replicas", 4, "-fleet: the service's replicas")
	redisAddr := fs.String("redis", "", `-fleet: the address of a Redis to use ("localhost:6379"), in place of starting a redis-server`)
	svgPath := fs.String("svg", filepath.Join(os.TempDir(), "retrystorm.svg"), `where to write the SVG chart ("" for none)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, nothing runs
		}
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	s.Trigger = storm.Trigger(*trigger)
	s.HTTP = *httpMode
	if *fleet {
		for _, name := range []string{"http", "status", "strategies", "svg"} {
			if set[name] {
				return fmt.Errorf("-%s is not supported with -fleet", name)
			}
		}
		fs, _ := storm.DefaultFleet()
		if !set["factor"] {
			s.Factor = fs.Factor
		}
		if !set["warmup"] {
			s.TriggerAt = fs.TriggerAt
		}
		if !set["trigger-for"] {
			s.TriggerFor = fs.TriggerFor
		}
		if !set["length"] {
			s.Length = fs.Length
		}
	} else {
		for _, name := range []string{"replicas", "redis"} {
			if set[name] {
				return fmt.Errorf("-%s needs -fleet", name)
			}
		}
	}
	if set["breaker-calls"] && !set["breaker-window"] {
		p.Breaker.TimeWindow = 0 // one window or the other
	}
	if s.HTTP {
		if !set["speed"] {
			// An attempt over loopback HTTP costs about 170µs of CPU
			// (19µs in process): a run of 291,000 attempts took 50s of
			// CPU over HTTP, 5.5s in process. In real time, the spike's storms of (b)
			// and (c) (over 5000 attempts/s each) take both cores of a
			// 2-core machine, and the other strategies then fail for want
			// of CPU, not for their policies. At half speed the run
			// gives the table of the run in process, but its timers fire
			// late enough (5ms at the 99th percentile on an idle 2-core
			// machine) that the self-check distrusts it; at a quarter
			// speed it passes (3ms, 1.6ms of scenario time).
			s.Speed = 0.25
		}
	}
	list, err := storm.ParseStrategies(*strategies)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("format %q unknown; want table or json", *format)
	}
	if err := s.Validate(); err != nil {
		return err
	}

	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		// A collection delays the timers and goroutines of a real-time
		// run, which on a 2-core machine shows in its numbers. A run
		// allocates about 400MB: collect only if the heap nears 1GiB.
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(1 << 30)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *fleet {
		return runFleet(ctx, s, fleetOptions{replicas: *replicas, redisAddr: *redisAddr, format: *format, allowBusy: *allowBusy}, stdout, stderr)
	}
	if *format == "table" {
		storm.Describe(stdout, s, list)
		fmt.Fprintln(stdout)
	}
	if *statusAddr != "" {
		stopStatus, err := serveStatus(*statusAddr, &s, stderr)
		if err != nil {
			return err
		}
		defer stopStatus()
	}
	wall := time.Now()
	watch := storm.StartWatch(time.Duration(float64(5*time.Millisecond) / s.Speed))
	results, err := storm.Run(ctx, s, list)
	late := watch.Stop()
	if err != nil {
		return err
	}
	elapsed := time.Since(wall)
	untrusted := storm.Check(s, late, results)
	var busy error
	if len(untrusted) > 0 && !*allowBusy {
		busy = errBusy
	}

	if *svgPath != "" {
		f, err := os.Create(*svgPath)
		if err != nil {
			return err
		}
		if err := storm.SVG(f, s, results); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Scenario  storm.Scenario  `json:"scenario"`
			Wall      time.Duration   `json:"wallNs"`
			Chart     string          `json:"chart,omitempty"`
			Results   []*storm.Result `json:"results"`
			Lateness  storm.Lateness  `json:"timerLateness"`
			Untrusted []string        `json:"untrusted,omitempty"`
		}{s, elapsed, *svgPath, results, late, untrusted}); err != nil {
			return err
		}
		return busy
	}
	storm.Table(stdout, s, results)
	fmt.Fprintln(stdout)
	storm.Legend(stdout, s)
	fmt.Fprintln(stdout)
	storm.Sparklines(stdout, s, results)
	fmt.Fprintln(stdout)
	if s.HTTP {
		storm.AttemptCounts(stdout, results)
		fmt.Fprintln(stdout)
	}
	if *svgPath != "" {
		fmt.Fprintf(stdout, "Chart: %s\n", *svgPath)
	}
	fmt.Fprintf(stdout, "Ran in %.1fs of wall time", elapsed.Seconds())
	if s.HTTP {
		fmt.Fprintf(stdout, ", over loopback HTTP")
	}
	fmt.Fprintf(stdout, ". Timers fired late by %s (median), %s (p99), %s at worst, in real time.\n",
		ms(late.P50), ms(late.P99), ms(late.Max))
	if len(untrusted) == 0 {
		fmt.Fprintf(stdout, "Self-check passed: the timers were on time and every strategy served ≥ %.1f%% of the requests before\n", 100*storm.WarmupTrusted)
		fmt.Fprintf(stdout, "the trigger, so this run's figures describe the strategies, not the machine. The sweep\n")
		fmt.Fprintf(stdout, "(go test -run Sweep -v ./examples/retrystorm/storm) checks the claims in virtual time.\n")
		return nil
	}
	fmt.Fprintf(stdout, "\nSELF-CHECK FAILED: this machine was too busy for the figures above to mean anything:\n")
	for _, why := range untrusted {
		fmt.Fprintf(stdout, "  - %s\n", why)
	}
	fmt.Fprintf(stdout, "Run it again on a quieter machine, or read the same scenario in virtual time, where the machine plays no\n")
	fmt.Fprintf(stdout, "part: go test -run Sweep -v ./examples/retrystorm/storm\n")
	return busy
}

// serveStatus registers the run's policies in a new registry (s.Registry)
// and serves its status page on addr, until stop is called. It prints the
// page's URL to w.
func serveStatus(addr string, s *storm.Scenario, w io.Writer) (stop func(), err error) {
	reg, err := registry.New()
	if err != nil {
		return nil, err
	}
	h, err := status.NewHandler(reg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-status: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/seawall/", http.StripPrefix("/debug/seawall", h))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ErrServerClosed once stopped
	}()
	s.Registry = reg
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	fmt.Fprintf(w, "Status page: http://%s/debug/seawall/ (while the run lasts)\n", net.JoinHostPort(host, port))
	return func() {
		srv.Close()
		<-done
	}, nil
}

// ms formats a duration in milliseconds, "1.25ms".
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
