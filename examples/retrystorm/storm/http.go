package storm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/httpmw"
	"github.com/seawall-go/seawall/throttle"
)

// requestHeader carries a request's number, the same on each of its
// attempts, so that the server can count the attempts that reached it.
const requestHeader = "Storm-Request"

// runHTTP is RunStrategy over loopback HTTP: the account service behind an
// http.Server on 127.0.0.1 (h2c), the callers http.Clients whose
// httpmw.Transport carries their policies.
func (s Scenario) runHTTP(ctx context.Context, st Strategy) (*Result, error) {
	sp := s.Speed
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / sp) }
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true) // HTTP/2 with prior knowledge, no TLS

	res := &Result{Strategy: st}
	var transitions, sent atomic.Uint64
	onState := func(string, breaker.State, breaker.State) { transitions.Add(1) }
	ln, dial, err := s.listen(ctx)
	if err != nil {
		return nil, err
	}
	reg := s.registrar(st)
	defer reg.close()
	clients := make([]*http.Client, s.Callers)
	bases := make([]*http.Transport, s.Callers)
	transports := make([]*httpmw.Transport, s.Callers)
	for i := range s.Callers {
		opts := []httpmw.TransportOption{httpmw.WithRetry(s.retryConfig(st, sp)), httpmw.WithAttemptTimeout(scale(s.AttemptTimeout))}
		if st.breaks() {
			g, err := breaker.NewGroup(s.breakerConfig(sp, onState), 0) // keyed by host: one breaker
			if err != nil {
				return nil, err
			}
			opts = append(opts, httpmw.WithBreakers(g, httpmw.BreakerPerHost))
		}
		if st.throttles() {
			th, err := throttle.New(s.throttleConfig(sp))
			if err != nil {
				return nil, err
			}
			opts = append(opts, httpmw.WithThrottle(th))
		}
		if reg.reg != nil {
			// The transport registers its retry (and budget), breakers
			// and throttle under this name.
			name := fmt.Sprintf("%scaller-%d", reg.prefix, i)
			opts = append(opts, httpmw.WithRegistry(reg.reg, name))
			reg.names = append(reg.names, name+".retry", name+".breakers", name+".throttle")
		}
		bases[i] = &http.Transport{Protocols: &protocols, DialContext: dial}
		tr, err := httpmw.NewTransport(countAttempts{bases[i], &sent}, opts...)
		if err != nil {
			return nil, err
		}
		clients[i], transports[i] = &http.Client{Transport: tr}, tr
	}
	defer func() {
		for _, b := range bases {
			b.CloseIdleConnections()
		}
	}()

	var shed []httpmw.ServerOption
	switch {
	case st == Adaptive:
		al, err := adaptive.New(s.adaptiveConfig(sp))
		if err != nil {
			return nil, err
		}
		shed = []httpmw.ServerOption{httpmw.WithAdaptiveLimit(al)}
		reg.add("service.adaptive", al)
	case st.protected():
		lim, bh, err := s.shedders(sp)
		if err != nil {
			return nil, err
		}
		shed = []httpmw.ServerOption{httpmw.WithRateLimit(lim), httpmw.WithLoadShed(bh)}
		reg.add("service.limiter", lim)
		reg.add("service.bulkhead", bh)
	}
	if reg.err != nil {
		return nil, reg.err
	}
	start := time.Now()
	svc := s.newService(start)
	hs := &httpService{svc: svc, hold: st.protected(), reached: make(map[uint64]int)}
	hs.next = http.HandlerFunc(hs.account)
	if st.protected() {
		svc.dropExpired = true
		mw, err := httpmw.NewServer(append(shed,
			httpmw.WithDeadline(httpmw.DefaultMaxTimeout),
			httpmw.WithDefaultRetryAfter(scale(s.Derived().FullHint)), // the limiter's refusals carry their own
			httpmw.WithRejectFunc(func(w http.ResponseWriter, r *http.Request, rej httpmw.Rejection) {
				svc.refused(rej.Status == http.StatusTooManyRequests || rej.Status == http.StatusServiceUnavailable)
				httpmw.WriteRejection(w, r, rej)
			}))...)
		if err != nil {
			return nil, err
		}
		hs.next = mw.Handler(hs.next)
	}
	srv := &http.Server{
		Handler:           hs,
		Protocols:         &protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 1000}, // one connection per caller
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var workers sync.WaitGroup
	for range s.Workers {
		workers.Go(svc.worker)
	}
	url := "http://" + ln.Addr().String() + "/account"
	var numbers atomic.Uint64
	recs := drive(ctx, s, start, func(i int, at time.Duration) numbered {
		n := numbers.Add(1)
		return numbered{n, s.httpRequest(ctx, at, clients[i], url, n)}
	})

	// Every request has ended: an attempt still on its way to the server
	// has been abandoned, and has not reached it. Close the server and its
	// connections (shutting down, an HTTP/2 server would wait a second for
	// its clients to hang up); the handlers still running see their
	// requests' contexts end, and are waited for below.
	srv.Close()
	serveErr := <-served
	hs.mu.Lock()
	hs.closed = true
	hs.mu.Unlock()
	close(svc.stop)
	workers.Wait()
	hs.handlers.Wait()

	if !errors.Is(serveErr, http.ErrServerClosed) {
		return nil, serveErr
	}
	res.Records = make([]Record, len(recs))
	for i, r := range recs {
		r.rec.Attempts = hs.reached[r.n]
		res.Records[i] = r.rec
	}
	for _, tr := range transports {
		m := tr.Metrics()
		res.Retries += m.Retries
		res.BudgetExhausted += m.Budget.Exhausted
	}
	res.AttemptsSent = sent.Load()
	res.BreakerTransitions = transitions.Load()
	s.conclude(res, svc)
	return res, ctx.Err()
}

// listen returns the listener of a run's server, and the dialer its clients
// use to reach it: a loopback TCP listener and the default dialer, unless
// the scenario has an in-memory network (the tests' inMemory, which lets a
// run over HTTP take place in virtual time).
func (s Scenario) listen(ctx context.Context) (net.Listener, func(context.Context, string, string) (net.Conn, error), error) {
	if s.inMemory != nil {
		ln, dial := s.inMemory()
		return ln, dial, nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	return ln, nil, err
}

// numbered is a request's record and its number.
type numbered struct {
	n   uint64
	rec Record
}

// httpRequest sends request number n with client c and returns its record,
// without its attempts, which only the server knows.
func (s Scenario) httpRequest(ctx context.Context, sent time.Duration, c *http.Client, url string, n uint64) Record {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(float64(s.Deadline)/s.Speed))
	defer cancel()
	rec := Record{Sent: sent}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return rec
	}
	req.Header.Set(requestHeader, strconv.FormatUint(n, 10))
	t0 := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		rec.OK = err == nil && resp.StatusCode == http.StatusOK
	}
	rec.Latency = time.Duration(float64(time.Since(t0)) * s.Speed)
	return rec
}

// countAttempts is a caller's base RoundTripper: it counts the attempts
// sent.
type countAttempts struct {
	rt   http.RoundTripper
	sent *atomic.Uint64
}

func (c countAttempts) RoundTrip(r *http.Request) (*http.Response, error) {
	c.sent.Add(1)
	return c.rt.RoundTrip(r)
}

// httpService is the account service behind an HTTP server: it counts the
// attempts that reach it, by request number, then hands them to next (for
// (f), httpmw's protection in front of account).
type httpService struct {
	svc  *service
	hold bool // (f): account holds a request until a worker is done with it
	next http.Handler

	mu       sync.Mutex
	closed   bool           // the service has stopped
	reached  map[uint64]int // attempts that reached the server, by request number
	handlers sync.WaitGroup // requests being handled, while not closed
}

func (h *httpService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if n, err := strconv.ParseUint(r.Header.Get(requestHeader), 10, 64); err == nil {
		h.reached[n]++
	}
	h.handlers.Add(1)
	h.mu.Unlock()
	defer h.handlers.Done()
	h.next.ServeHTTP(w, r)
}

// account hands one attempt to the service model and answers: 200 if it
// was served, 503 if the service failed it (with a Retry-After if it gave
// a hint). An attempt whose client has gone, or whose propagated deadline
// has passed, gets an answer nobody reads: 499 or 504, anything but a
// success.
func (h *httpService) account(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var err error
	if h.hold {
		err = h.svc.serve(ctx)
	} else {
		err = h.svc.call(ctx)
	}
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	case ctx.Err() != nil:
		status := httpmw.StatusClientClosedRequest
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		w.WriteHeader(status)
	default:
		d, _ := seawall.RetryAfter(err)
		httpmw.WriteRejection(w, r, httpmw.Rejection{Status: http.StatusServiceUnavailable, RetryAfter: d, Err: err})
	}
}
