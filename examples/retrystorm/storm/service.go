package storm

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/seawall-go/seawall"
)

// errOverloaded is the service's answer when its protection ((f), (g))
// refuses a request: "503, retry after …". It matches seawall.ErrRejected
// and carries the service's retry-after hint, so that seawall.IsOverload
// is true of it: in process, it is what a 429 or a 503 with Retry-After is
// over HTTP, load shedding and not failure, which the callers' breakers do
// not count and their throttles do.
var errOverloaded = seawall.NewRejection("account service: overloaded")

// A request is one attempt, as the service sees it: the caller's context
// for that attempt (done when the caller gives up: attempt timeout, request
// deadline) and where to send the answer.
type request struct {
	ctx  context.Context
	resp chan error // buffered: the service never blocks on a caller that left
}

// job is a request in the service's queue.
type job struct {
	req      *request
	enqueued time.Time
	finished chan struct{} // closed when a worker is done with it; nil if nobody waits
}

// service is the account service: Workers workers taking requests, oldest
// first, from an unbounded queue, each busy for an exponentially
// distributed time per request. Unprotected, it serves every request it
// received, even when the caller has given up on it. Protected (f), a front
// end sheds load with a limiter and a bulkhead before the queue, and the
// workers drop requests whose caller left before they started.
type service struct {
	mean        time.Duration // mean service time, real
	slowFrom    time.Time     // capacity drop window (Slowdown), real
	slowTo      time.Time
	slowFactor  float64
	dropExpired bool
	front       seawall.Policy // limiter → bulkhead; nil when unprotected
	fullHint    time.Duration  // real
	speed       float64
	slack       time.Duration // real; see Scenario.Slack

	wake     chan struct{}
	stop     chan struct{}
	handlers sync.WaitGroup // handle goroutines (f)

	mu    sync.Mutex
	queue []*job
	head  int
	rng   *rand.Rand
	stats ServiceStats // in scenario time
}

// ServiceStats is what the service did.
type ServiceStats struct {
	Served    int           // requests a worker served to the end
	Abandoned int           // of which the caller had given up by the end
	Dropped   int           // requests dropped without work: caller gone before a worker started it (f)
	Shed      int           // requests refused by the limiter or the bulkhead (f)
	Busy      time.Duration // service time spent, all requests
	Wasted    time.Duration // service time spent on requests whose caller had given up by the end
	MaxQueue  int           // the longest the queue got
}

// receive takes a request from the network.
func (s *service) receive(r *request) {
	if s.front == nil {
		s.enqueue(&job{req: r, enqueued: time.Now()})
		return
	}
	s.handlers.Go(func() { s.handle(r) })
}

// handle serves a request through the front end (f): a handler goroutine,
// as a server has per request. Rejections go back as errOverloaded with a
// retry-after hint, as "503 + Retry-After" would.
func (s *service) handle(r *request) {
	err := s.front.Do(r.ctx, func(context.Context) error {
		s.hold(r) // the slot is held until a worker is done with the request
		return nil
	})
	switch {
	case err == nil:
		return // the worker answered
	case errors.Is(err, seawall.ErrRejected):
		hint, ok := seawall.RetryAfter(err)
		if !ok {
			hint = s.fullHint
		}
		s.refused(true)
		r.resp <- seawall.WithRetryAfter(errOverloaded, hint)
	default: // the caller left while queued in the bulkhead
		s.refused(false)
		r.resp <- err
	}
}

func (s *service) enqueue(j *job) {
	s.mu.Lock()
	s.queue = append(s.queue, j)
	s.stats.MaxQueue = max(s.stats.MaxQueue, len(s.queue)-s.head)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // enough wake-ups are pending
	}
}

// pop returns the oldest job and its service time, waiting for one, or nil
// once the service stops.
func (s *service) pop() (*job, time.Duration) {
	for {
		s.mu.Lock()
		if s.head < len(s.queue) {
			j := s.queue[s.head]
			s.queue[s.head] = nil
			s.head++
			if s.head > 1024 && 2*s.head > len(s.queue) {
				n := copy(s.queue, s.queue[s.head:])
				clear(s.queue[n:])
				s.queue, s.head = s.queue[:n], 0
			}
			d := time.Duration(s.rng.ExpFloat64() * float64(s.mean))
			s.mu.Unlock()
			return j, d
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.stop:
			return nil, 0
		}
	}
}

// worker serves jobs until the service stops. It keeps its own schedule: a
// job starts when both it and the worker are ready, and ends its service
// time later, however late the worker's timer fires, so that a real-time
// run keeps the service's capacity exact.
func (s *service) worker() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var free time.Time // when the worker finished its last job
	for {
		j, d := s.pop()
		if j == nil {
			return
		}
		if s.dropExpired && j.req.ctx.Err() != nil {
			s.mu.Lock()
			s.stats.Dropped++
			s.mu.Unlock()
			s.finish(j, j.req.ctx.Err())
			continue
		}
		start := j.enqueued
		if gap := start.Sub(free); gap <= s.slack {
			start = free
		}
		if !s.slowFrom.IsZero() && !start.Before(s.slowFrom) && start.Before(s.slowTo) {
			d = time.Duration(float64(d) * s.slowFactor)
		}
		free = start.Add(d)
		if wait := time.Until(free); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
		gone := j.req.ctx.Err() != nil
		sd := time.Duration(float64(d) * s.speed)
		s.mu.Lock()
		s.stats.Served++
		s.stats.Busy += sd
		if gone {
			s.stats.Abandoned++
			s.stats.Wasted += sd
		}
		s.mu.Unlock()
		s.finish(j, nil)
	}
}

// finish answers a job's caller and releases its handler, if any.
func (s *service) finish(j *job, err error) {
	j.req.resp <- err
	if j.finished != nil {
		close(j.finished)
	}
}

// call sends one attempt to the service and waits for the answer or for
// ctx to end (the caller gives up; the service is not told).
func (s *service) call(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, resp: make(chan error, 1)}
	s.receive(r)
	select {
	case err := <-r.resp:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errStopped is the answer to a request the service still held when it
// stopped.
var errStopped = errors.New("account service: stopped")

// serve is call for a server that holds each request until a worker is
// done with it, whether or not its caller still waits, as handle does: the
// HTTP handler of (f), which holds its bulkhead slot that long. A worker
// drops the request at once if its caller has left (dropExpired).
func (s *service) serve(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, resp: make(chan error, 1)}
	if !s.hold(r) {
		return errStopped
	}
	return <-r.resp // sent before the job was finished
}

// hold queues r for the workers and waits until one is done with it; it
// reports false if the service stopped first.
func (s *service) hold(r *request) bool {
	j := &job{req: r, enqueued: time.Now(), finished: make(chan struct{})}
	s.enqueue(j)
	select {
	case <-j.finished:
		return true
	case <-s.stop:
		return false
	}
}

// refused counts a request that the protection in front of the service
// refused: shed (by a limiter or a bulkhead) or dropped (its caller had
// left).
func (s *service) refused(shed bool) {
	s.mu.Lock()
	if shed {
		s.stats.Shed++
	} else {
		s.stats.Dropped++
	}
	s.mu.Unlock()
}
