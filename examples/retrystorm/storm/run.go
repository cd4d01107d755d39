package storm

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// A Record is the fate of one request, in scenario time.
type Record struct {
	Sent     time.Duration // when it was sent, since the start
	Latency  time.Duration // until the caller had its answer: success, or failure
	Attempts int           // attempts that reached the service
	OK       bool
}

// Result is the outcome of one strategy's run.
type Result struct {
	Strategy Strategy     `json:"strategy"`
	Metrics  Metrics      `json:"metrics"`
	Service  ServiceStats `json:"service"`
	// Retries and BudgetExhausted sum the callers' retry metrics;
	// BreakerTransitions counts their breakers' state changes.
	Retries            uint64 `json:"retries"`
	BudgetExhausted    uint64 `json:"budgetExhausted"`
	BreakerTransitions uint64 `json:"breakerTransitions"`
	// AttemptsSent counts the attempts the callers sent over HTTP
	// (Scenario.HTTP), whether or not they reached the service; 0 in
	// process, where every attempt made reaches it.
	AttemptsSent uint64 `json:"attemptsSent,omitempty"`
	// Timeline is the fate of the requests sent in each BinWidth of the run.
	Timeline []Bin `json:"timeline"`
	// Records are the requests, in no particular order.
	Records []Record `json:"-"`
}

// Run runs the strategies side by side, each against its own fresh service
// with its own callers, and returns their results in the order given. It
// returns when every goroutine it started has ended.
func Run(ctx context.Context, s Scenario, strategies []Strategy) ([]*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := make([]*Result, len(strategies))
	errs := make([]error, len(strategies))
	var wg sync.WaitGroup
	for i, st := range strategies {
		wg.Go(func() { out[i], errs[i] = RunStrategy(ctx, s, st) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, ctx.Err()
}

// RunStrategy runs one strategy: it starts the service's workers and the
// callers, sends requests until s.Length, waits for every request to end,
// stops the service and returns the result. It returns when every
// goroutine it started has ended.
func RunStrategy(ctx context.Context, s Scenario, st Strategy) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.HTTP {
		return s.runHTTP(ctx, st)
	}
	sp := s.Speed
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / sp) }
	start := time.Now()

	svc := s.newService(start)
	reg := s.registrar(st)
	defer reg.close()
	if st.protected() {
		front, err := s.front(st, sp, reg)
		if err != nil {
			return nil, err
		}
		svc.front = front
		svc.dropExpired = true
		svc.fullHint = scale(s.Derived().FullHint)
	}

	res := &Result{Strategy: st}
	var transitions atomic.Uint64
	policies := make([]*retry.Retry, s.Callers)
	clients := make([]seawall.Policy, s.Callers)
	for i := range s.Callers {
		r, b, th, err := s.client(st, i, sp, func(string, breaker.State, breaker.State) { transitions.Add(1) })
		if err != nil {
			return nil, err
		}
		policies[i] = r
		reg.add(fmt.Sprintf("caller-%d.retry", i), r)
		if b != nil {
			reg.add(fmt.Sprintf("caller-%d.breaker", i), b)
		}
		if th != nil {
			reg.add(fmt.Sprintf("caller-%d.throttle", i), th)
		}
		if reg.err != nil {
			return nil, reg.err
		}
		// The retry outside, so that an open breaker stops retries; the
		// throttle outside the breaker, so that it counts the attempts
		// meant for the service, not those an open breaker refused.
		p := []seawall.Policy{r}
		if th != nil {
			p = append(p, th)
		}
		if b != nil {
			p = append(p, b)
		}
		clients[i] = seawall.Pipeline(p...)
	}

	var workers sync.WaitGroup
	for range s.Workers {
		workers.Go(svc.worker)
	}
	res.Records = drive(ctx, s, start, func(i int, sent time.Duration) Record {
		return s.request(ctx, sent, clients[i], svc.call)
	})
	close(svc.stop)
	workers.Wait()
	svc.handlers.Wait()

	for _, r := range policies {
		m := r.Metrics()
		res.Retries += m.Retries
		res.BudgetExhausted += m.Budget.Exhausted
	}
	res.BreakerTransitions = transitions.Load()
	s.conclude(res, svc)
	return res, ctx.Err()
}

// newService returns the account service of a run started at start,
// unprotected, its workers not yet started.
func (s Scenario) newService(start time.Time) *service {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / s.Speed) }
	svc := &service{
		mean:  scale(s.ServiceTime),
		speed: s.Speed,
		slack: s.Slack,
		wake:  make(chan struct{}, s.Workers),
		stop:  make(chan struct{}),
		rng:   rand.New(rand.NewPCG(s.Seed, 0x5e41ce)),
	}
	if s.Trigger == Slowdown {
		svc.slowFrom = start.Add(scale(s.TriggerAt))
		svc.slowTo = start.Add(scale(s.TriggerEnd()))
		svc.slowFactor = s.Factor
	}
	return svc
}

// drive sends the requests of every caller of s, from start, until
// s.Length or the end of ctx: each on a goroutine of its own that calls do
// with its caller's index and the time it was sent. It returns what do
// returned for each request, in no particular order, once every request
// has ended.
func drive[T any](ctx context.Context, s Scenario, start time.Time, do func(i int, sent time.Duration) T) []T {
	var (
		mu       sync.Mutex // guards out
		out      []T
		requests sync.WaitGroup
		callers  sync.WaitGroup
	)
	for i := range s.Callers {
		callers.Go(func() {
			s.arrivals(ctx, start, i, func(sent time.Duration) {
				requests.Go(func() {
					r := do(i, sent)
					mu.Lock()
					out = append(out, r)
					mu.Unlock()
				})
			})
		})
	}
	callers.Wait() // every requests.Go has happened
	requests.Wait()
	return out
}

// conclude fills in res's service statistics, timeline and metrics, once
// the service has stopped and res.Records is complete.
func (s Scenario) conclude(res *Result, svc *service) {
	svc.mu.Lock()
	res.Service = svc.stats
	svc.mu.Unlock()
	res.Timeline = s.timeline(res.Records)
	res.Metrics = s.metrics(res)
}

// request sends one request through the caller's policy, each attempt
// with call, and returns its record.
func (s Scenario) request(ctx context.Context, sent time.Duration, p seawall.Policy, call func(context.Context) error) Record {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(float64(s.Deadline)/s.Speed))
	defer cancel()
	t0 := time.Now()
	attempts := 0
	err := p.Do(ctx, func(ctx context.Context) error {
		attempts++
		return call(ctx)
	})
	return Record{
		Sent:     sent,
		Latency:  time.Duration(float64(time.Since(t0)) * s.Speed),
		Attempts: attempts,
		OK:       err == nil,
	}
}

// rateAt returns caller i's request rate at scenario time t (seconds) and
// when it next changes.
func (s Scenario) rateAt(t float64) (rate, until float64) {
	rate = s.Rate / float64(s.Callers)
	at, end, length := s.TriggerAt.Seconds(), s.TriggerEnd().Seconds(), s.Length.Seconds()
	switch {
	case s.Trigger != Spike || t >= end:
		return rate, length
	case t < at:
		return rate, at
	default:
		return rate * s.Factor, end
	}
}

// arrivals calls send for each request of caller i, at the times of a
// Poisson process of the scenario's rate (piecewise constant: the
// process restarts at each change of rate, which is exact, as it is
// memoryless), until s.Length or the end of ctx.
func (s Scenario) arrivals(ctx context.Context, start time.Time, i int, send func(sent time.Duration)) {
	rng := rand.New(rand.NewPCG(s.Seed, uint64(i)+1))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	t := 0.0
	for {
		rate, until := s.rateAt(t)
		t += rng.ExpFloat64() / rate
		if t >= until {
			if t = until; t >= s.Length.Seconds() {
				// The next arrival would come after the end: wait for the end
				// nonetheless, so that a run lasts Length (and its last bins
				// are as long as the others) even when its last requests end
				// at once.
				if d := time.Until(start.Add(time.Duration(float64(s.Length) / s.Speed))); d > 0 {
					timer.Reset(d)
					select {
					case <-timer.C:
					case <-ctx.Done():
					}
				}
				return
			}
			continue
		}
		sent := time.Duration(t * float64(time.Second))
		if d := time.Until(start.Add(time.Duration(float64(sent) / s.Speed))); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		send(sent)
	}
}

// client returns caller i's retry policy, and its breaker and throttle for
// the strategies that have them (nil otherwise), for strategy st, their
// times scaled by speed.
func (s Scenario) client(st Strategy, i int, speed float64, onState func(string, breaker.State, breaker.State)) (*retry.Retry, *breaker.Breaker, *throttle.Throttle, error) {
	r, err := retry.New(s.retryConfig(st, speed))
	if err != nil || !st.breaks() {
		return r, nil, nil, err
	}
	bc := s.breakerConfig(speed, onState)
	bc.Name = fmt.Sprintf("caller-%d", i)
	b, err := breaker.New(bc)
	if err != nil || !st.throttles() {
		return r, b, nil, err
	}
	th, err := throttle.New(s.throttleConfig(speed))
	return r, b, th, err
}

// retryConfig returns a caller's retry configuration for strategy st, its
// times scaled by speed.
func (s Scenario) retryConfig(st Strategy, speed float64) retry.Config {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / speed) }
	cfg := retry.Config{
		MaxAttempts:    s.MaxAttempts,
		AttemptTimeout: scale(s.AttemptTimeout),
		MaxHint:        scale(5 * time.Minute),
		Budget:         retry.BudgetConfig{Disabled: true},
	}
	switch st {
	case NoRetry:
		cfg.MaxAttempts = 1
	case Naive:
		cfg.DelayFunc = func(int, error) time.Duration { return 0 }
	default:
		cfg.Delay = scale(s.Policies.Delay)
		cfg.MaxDelay = scale(max(10*time.Second, s.Policies.Delay))
		cfg.Jitter = retry.FullJitter
	}
	if st.budgeted() {
		cfg.Budget = scaleBudget(s.Policies.Budget, speed)
	}
	return cfg
}

// breakerConfig returns a caller's circuit breaker configuration, for the
// strategies that have one, its times scaled by speed.
func (s Scenario) breakerConfig(speed float64, onState func(string, breaker.State, breaker.State)) breaker.Config {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / speed) }
	bc := s.Policies.Breaker
	bc.OpenDuration = scale(bc.OpenDuration)
	bc.MaxOpenDuration = scale(bc.MaxOpenDuration)
	bc.TimeWindow = scale(bc.TimeWindow)
	bc.SlowCallThreshold = scale(bc.SlowCallThreshold)
	if onState != nil {
		bc.OnStateChange = func(c breaker.StateChange) { onState(c.Name, c.From, c.To) }
	}
	return bc
}

// throttleConfig returns a caller's throttle configuration for (g), its
// window scaled by speed.
func (s Scenario) throttleConfig(speed float64) throttle.Config {
	c := s.Policies.Throttle
	if c.Window == 0 {
		c.Window = throttle.DefaultWindow
	}
	c.Window = time.Duration(float64(c.Window) / speed)
	return c
}

// adaptiveConfig returns the service's adaptive concurrency limit for
// (g), its times scaled by speed.
func (s Scenario) adaptiveConfig(speed float64) adaptive.Config {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / speed) }
	c := s.Policies.Adaptive
	if c.Window == 0 {
		c.Window = adaptive.DefaultWindow
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = adaptive.DefaultProbeInterval
	}
	c.Window, c.ProbeInterval, c.MaxWait = scale(c.Window), scale(c.ProbeInterval), scale(c.MaxWait)
	return c
}

// scaleBudget returns c for a run speed times faster: the same share of
// requests, over a window speed times shorter.
func scaleBudget(c retry.BudgetConfig, speed float64) retry.BudgetConfig {
	if c.Disabled || (c.Mode != "" && c.Mode != "ratio") {
		return c
	}
	if c.Window == 0 {
		c.Window = retry.DefaultBudgetWindow
	}
	c.Window = time.Duration(float64(c.Window) / speed)
	c.MinRetriesPerSecond *= speed // the default, one retry per window, follows the window
	return c
}

// front returns the service's protection for strategy st, its times
// scaled by speed: for (f), the limiter, then the bulkhead; for (g), the
// adaptive concurrency limit. It registers them with reg.
func (s Scenario) front(st Strategy, speed float64, reg *registrar) (seawall.Policy, error) {
	if st == Adaptive {
		al, err := adaptive.New(s.adaptiveConfig(speed))
		if err != nil {
			return nil, err
		}
		reg.add("service.adaptive", al)
		return al, reg.err
	}
	lim, bh, err := s.shedders(speed)
	if err != nil {
		return nil, err
	}
	reg.add("service.limiter", lim)
	reg.add("service.bulkhead", bh)
	return seawall.Pipeline(lim, bh), reg.err
}

// shedders returns the limiter and the bulkhead of the service's protection
// (f), their times scaled by speed.
func (s Scenario) shedders(speed float64) (*ratelimit.Limiter, *bulkhead.Bulkhead, error) {
	p := s.Derived()
	lc := p.Limiter
	lc.Rate *= speed
	lim, err := ratelimit.New(lc)
	if err != nil {
		return nil, nil, err
	}
	bc := p.Bulkhead
	bc.MaxWait = time.Duration(float64(bc.MaxWait) / speed)
	bh, err := bulkhead.New(bc)
	if err != nil {
		return nil, nil, err
	}
	return lim, bh, nil
}
