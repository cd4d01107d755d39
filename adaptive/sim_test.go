package adaptive

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
)

// A service is a simulated dependency for tests in a synctest bubble:
// workers taking requests from one FIFO queue, each request taking a
// service time drawn when a worker starts it (fixed, or exponential around
// the mean), times a slowdown factor. Its capacity is its number of
// workers concurrent requests. A request whose caller has given up by the
// time a worker takes it is dropped without work.
type service struct {
	queue chan *job
	mean  time.Duration
	exp   bool
	slow  atomic.Int64 // service times are multiplied by slow/100

	mu    sync.Mutex
	rng   *rand.Rand
	quits []chan struct{}
	wg    sync.WaitGroup
}

type job struct {
	ctx  context.Context
	done chan struct{}
}

func newService(workers int, mean time.Duration, exp bool, seed uint64) *service {
	s := &service{queue: make(chan *job, 1<<16), mean: mean, exp: exp, rng: rand.New(rand.NewPCG(seed, 1))}
	s.slow.Store(100)
	s.setWorkers(workers)
	return s
}

// setWorkers changes the number of workers; a removed worker finishes the
// request it is serving.
func (s *service) setWorkers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.quits) > n {
		close(s.quits[len(s.quits)-1])
		s.quits = s.quits[:len(s.quits)-1]
	}
	for len(s.quits) < n {
		q := make(chan struct{})
		s.quits = append(s.quits, q)
		s.wg.Add(1)
		go s.work(q)
	}
}

func (s *service) serviceTime() time.Duration {
	d := s.mean
	if s.exp {
		s.mu.Lock()
		d = time.Duration(s.rng.ExpFloat64() * float64(s.mean))
		s.mu.Unlock()
	}
	return d * time.Duration(s.slow.Load()) / 100
}

func (s *service) work(quit chan struct{}) {
	defer s.wg.Done()
	for {
		select {
		case <-quit:
			return
		case j := <-s.queue:
			if j.ctx.Err() != nil {
				continue // abandoned: dropped without work
			}
			bubble.Sleep(s.serviceTime())
			close(j.done)
		}
	}
}

func (s *service) stop() {
	s.setWorkers(0)
	s.wg.Wait()
}

// call sends a request to s and waits for it, or for ctx to end.
func (s *service) call(ctx context.Context) error {
	j := &job{ctx: ctx, done: make(chan struct{})}
	s.queue <- j
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A recorder keeps the outcome of every request of a load.
type recorder struct {
	mu        sync.Mutex
	start     time.Time
	successes []outcome // completion time since start, latency
	rejected  int
	failed    int
}

type outcome struct{ at, latency time.Duration }

func (r *recorder) record(begin time.Time, err error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.successes = append(r.successes, outcome{now.Sub(r.start), now.Sub(begin)})
	case isLimited(err):
		r.rejected++
	default:
		r.failed++
	}
}

// goodput returns the successes per second completed in [from, to) since
// the start.
func (r *recorder) goodput(from, to time.Duration) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.successes {
		if o.at >= from && o.at < to {
			n++
		}
	}
	return float64(n) / (to - from).Seconds()
}

// p99 returns the 99th percentile latency of the successes completed in
// [from, to).
func (r *recorder) p99(from, to time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var l []time.Duration
	for _, o := range r.successes {
		if o.at >= from && o.at < to {
			l = append(l, o.latency)
		}
	}
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[len(l)*99/100]
}

// openLoad sends Poisson arrivals at rate(t) requests per second (t since
// the start) to s through l, each with the given deadline, until stop is
// closed; it returns once every request has ended.
func openLoad(l *Limiter, s *service, rec *recorder, seed uint64, deadline time.Duration, rate func(time.Duration) float64, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(seed, 2))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		r := rate(time.Since(rec.start))
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(rng.ExpFloat64() / r * float64(time.Second))):
		}
		wg.Go(func() {
			begin := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			rec.record(begin, l.Do(ctx, s.call))
		})
	}
}

// closedLoad runs n clients that each send a request to s through l as
// soon as the last ended (1ms after a rejection), until stop is closed.
func closedLoad(l *Limiter, s *service, rec *recorder, n int, stop <-chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				begin := time.Now()
				err := l.Do(context.Background(), s.call)
				rec.record(begin, err)
				if err != nil {
					bubble.Sleep(time.Millisecond)
				}
			}
		})
	}
}

// trace samples l's metrics every period until stop is closed.
type trace struct {
	mu  sync.Mutex
	at  []time.Duration
	ms  []Metrics
	beg time.Time
}

func (tr *trace) run(l *Limiter, period time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m := l.Metrics()
			tr.mu.Lock()
			tr.at = append(tr.at, time.Since(tr.beg))
			tr.ms = append(tr.ms, m)
			tr.mu.Unlock()
		}
	}
}

func (tr *trace) log(t *testing.T) {
	t.Helper()
	for i, m := range tr.ms {
		t.Logf("%6.2fs limit %3d est %6.1f inflight %3d baseline %v sampled %v probing %v probes %d",
			tr.at[i].Seconds(), m.Limit, m.Estimate, m.InFlight, m.Baseline.Round(10*time.Microsecond), m.Sampled.Round(10*time.Microsecond), m.Probing, m.Probes)
	}
}

func isLimited(err error) bool { return errors.Is(err, ErrLimited) }

// A run is a simulated load on a service through a limiter, in a synctest
// bubble: start it, drive it (change the service, sleep), then stop it.
type run struct {
	l    *Limiter
	s    *service
	rec  *recorder
	tr   *trace
	stop chan struct{}
	wg   sync.WaitGroup
}

// startRun starts a trace of l (every 10ms) and load(l, s, rec, stop).
func startRun(l *Limiter, s *service, load func(l *Limiter, s *service, rec *recorder, stop <-chan struct{})) *run {
	r := &run{l: l, s: s, rec: &recorder{start: time.Now()}, stop: make(chan struct{})}
	r.tr = &trace{beg: r.rec.start}
	r.wg.Go(func() { r.tr.run(l, 10*time.Millisecond, r.stop) })
	r.wg.Go(func() { load(l, s, r.rec, r.stop) })
	return r
}

// end stops the load and the service, and waits for every goroutine.
func (r *run) end() {
	close(r.stop)
	r.wg.Wait()
	r.s.stop()
}

// between returns the trace's metrics sampled in [from, to).
func (tr *trace) between(from, to time.Duration) []Metrics {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var ms []Metrics
	for i, at := range tr.at {
		if at >= from && at < to {
			ms = append(ms, tr.ms[i])
		}
	}
	return ms
}

// meanOf returns the mean of f over ms.
func meanOf(ms []Metrics, f func(Metrics) float64) float64 {
	var sum float64
	for _, m := range ms {
		sum += f(m)
	}
	return sum / float64(len(ms))
}

// net is the estimate less its headroom: what the gradient algorithm takes
// for the capacity.
func net(m Metrics) float64 { return m.Estimate - math.Sqrt(m.Estimate) }
