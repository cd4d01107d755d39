package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seawall-go/seawall/examples/retrystorm/storm"
	"github.com/seawall-go/seawall/ratelimit/redisrate"
)

// fleetOptions are the flags of -fleet.
type fleetOptions struct {
	replicas  int
	redisAddr string // "": start a redis-server of our own
	format    string
	allowBusy bool
}

// sharedLimits makes the Redis limiters of the fleet's variant (3): one
// go-redis client per replica, as separate processes have, and one bucket
// per run, so that runs against the same Redis do not share it.
type sharedLimits struct {
	addr string
	key  string

	mu       sync.Mutex
	clients  []*redis.Client
	limiters []*redisrate.Limiter
}

// limit is storm.Fleet.Shared.
func (l *sharedLimits) limit(replica, replicas int, rate float64, burst int) (storm.Limit, error) {
	c := redis.NewClient(&redis.Options{Addr: l.addr, ContextTimeoutEnabled: true})
	lim, err := redisrate.New(c, redisrate.Config{
		Rate:      rate,
		Burst:     burst,
		Key:       l.key,
		Instances: replicas, // while Redis is unavailable, each replica keeps to its share
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clients = append(l.clients, c)
	l.limiters = append(l.limiters, lim)
	return lim, nil
}

func (l *sharedLimits) close() {
	for _, c := range l.clients {
		c.Close()
	}
}

// redisSummary is what the shared limiters say of Redis, all replicas
// together.
type redisSummary struct {
	Addr     string `json:"addr"`
	Started  bool   `json:"started"` // a redis-server of the demo's own
	Redis    uint64 `json:"redisDecisions"`
	Fallback uint64 `json:"fallbackDecisions"` // decided by the local share while Redis was unavailable
	// FallbackAdmitted are the fallback's admissions: Redis did not count
	// them.
	FallbackAdmitted uint64        `json:"fallbackAdmitted"`
	Errors           uint64        `json:"errors"`
	Timeouts         uint64        `json:"timeouts"`
	RoundTripP99     time.Duration `json:"roundTripP99Ns"` // the bucket's upper bound
}

func (l *sharedLimits) summary() redisSummary {
	var s redisSummary
	var h redisrate.Histogram
	for _, lim := range l.limiters {
		m := lim.Metrics()
		fb := m.Fallback.LocalAdmitted + m.Fallback.LocalRejected + m.Fallback.Closed + m.Fallback.Open
		s.Fallback += fb
		s.FallbackAdmitted += m.Fallback.LocalAdmitted + m.Fallback.Open
		s.Redis += m.Admitted + m.Rejected - fb
		s.Errors += m.RedisErrors
		s.Timeouts += m.Timeouts
		if h.Counts == nil {
			h = redisrate.Histogram{Bounds: m.RoundTrip.Bounds, Counts: make([]uint64, len(m.RoundTrip.Counts))}
		}
		for i, c := range m.RoundTrip.Counts {
			h.Counts[i] += c
		}
	}
	if n := h.Total(); n > 0 {
		var seen uint64
		for i, c := range h.Counts {
			if seen += c; seen*100 >= 99*n {
				if i < len(h.Bounds) {
					s.RoundTripP99 = h.Bounds[i]
				} else {
					s.RoundTripP99 = -1 // above the last bound
				}
				break
			}
		}
	}
	return s
}

// runFleet runs the fleet variant of the scenario: the account service
// as o.replicas replicas in front of one backend, with (1) a local limit
// at the capacity on each, (2) a local limit at the capacity ÷ the
// replicas on each, and (3) one limit in Redis that they share.
func runFleet(ctx context.Context, s storm.Scenario, o fleetOptions, stdout, stderr io.Writer) error {
	f := storm.Fleet{Replicas: o.replicas}
	if err := f.Validate(s); err != nil {
		return err
	}
	sum := redisSummary{Addr: o.redisAddr}
	if o.redisAddr == "" {
		srv, err := startRedis(ctx)
		if err != nil {
			return err
		}
		defer srv.Stop() // also on Ctrl-C: ctx ends the run, and we return
		sum.Addr, sum.Started = srv.Addr, true
	} else if err := ping(o.redisAddr); err != nil {
		return fmt.Errorf("-redis %s: %w", o.redisAddr, err)
	}
	shared := &sharedLimits{addr: sum.Addr, key: fmt.Sprintf("retrystorm-fleet-%d-%d", os.Getpid(), time.Now().UnixNano())}
	defer shared.close()
	f.Shared = shared.limit

	if o.format == "table" {
		storm.DescribeFleet(stdout, s, f, storm.AllVariants)
		if sum.Started {
			fmt.Fprintf(stdout, "Redis: a redis-server of the demo's own on %s (no persistence), stopped at exit.\n", sum.Addr)
		} else {
			fmt.Fprintf(stdout, "Redis: %s (-redis); the run's bucket is %q.\n", sum.Addr, shared.key)
		}
		fmt.Fprintln(stdout)
	}
	wall := time.Now()
	watch := storm.StartWatch(time.Duration(float64(5*time.Millisecond) / s.Speed))
	results, err := storm.RunFleet(ctx, s, f, storm.AllVariants)
	late := watch.Stop()
	if err != nil {
		return err
	}
	elapsed := time.Since(wall)
	r := shared.summary()
	r.Addr, r.Started = sum.Addr, sum.Started
	untrusted := storm.CheckFleet(s, late, results)
	if n := r.Redis + r.Fallback; r.Fallback*100 > n {
		untrusted = append(untrusted, fmt.Sprintf("Redis did not answer %d of the %d decisions of (3) within its timeout (%d timeouts, %d errors): its local fallback took them",
			r.Fallback, n, r.Timeouts, r.Errors))
	}
	var busy error
	if len(untrusted) > 0 && !o.allowBusy {
		busy = errBusy
	}

	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Scenario  storm.Scenario       `json:"scenario"`
			Fleet     storm.Fleet          `json:"fleet"`
			Wall      time.Duration        `json:"wallNs"`
			Results   []*storm.FleetResult `json:"results"`
			Redis     redisSummary         `json:"redis"`
			Lateness  storm.Lateness       `json:"timerLateness"`
			Untrusted []string             `json:"untrusted,omitempty"`
		}{s, f, elapsed, results, r, late, untrusted}); err != nil {
			return err
		}
		return busy
	}
	storm.FleetTable(stdout, s, results)
	fmt.Fprintln(stdout)
	storm.FleetLegend(stdout, s, results)
	fmt.Fprintln(stdout)
	storm.FleetSparklines(stdout, s, results)
	fmt.Fprintln(stdout)
	p99 := "over 1s"
	if r.RoundTripP99 >= 0 {
		p99 = "≤ " + r.RoundTripP99.String()
	}
	fmt.Fprintf(stdout, "Redis decided %d of (3)'s attempts (round trip %s at the 99th percentile), the local fallback %d.\n",
		r.Redis, p99, r.Fallback)
	fmt.Fprintf(stdout, "Ran in %.1fs of wall time. Timers fired late by %s (median), %s (p99), %s at worst, in real time.\n",
		elapsed.Seconds(), ms(late.P50), ms(late.P99), ms(late.Max))
	if len(untrusted) == 0 {
		fmt.Fprintf(stdout, "Self-check passed: the timers were on time, Redis answered, and (1) and (3) served ≥ %.1f%% of the requests\n", 100*storm.WarmupTrusted)
		fmt.Fprintf(stdout, "before the spike, so this run's figures describe the limits, not the machine. The same fleet runs in\n")
		fmt.Fprintf(stdout, "virtual time, with an in-process shared limit: go test -run Fleet -v ./examples/retrystorm/storm\n")
		return nil
	}
	fmt.Fprintf(stdout, "\nSELF-CHECK FAILED: this machine was too busy for the figures above to mean anything:\n")
	for _, why := range untrusted {
		fmt.Fprintf(stdout, "  - %s\n", why)
	}
	fmt.Fprintf(stdout, "Run it again on a quieter machine, or read the same fleet in virtual time, where the machine plays no\n")
	fmt.Fprintf(stdout, "part: go test -run Fleet -v ./examples/retrystorm/storm\n")
	return busy
}
