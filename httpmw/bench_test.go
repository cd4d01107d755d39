package httpmw

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
)

// benchMiddleware builds a Server with each policy (on its admit path: limits far
// above the benchmark's rate) around an empty handler.
func benchMiddleware(b *testing.B) map[string]func(http.Handler) http.Handler {
	b.Helper()
	l, err := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1e9, Burst: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	server := func(opts ...ServerOption) func(http.Handler) http.Handler {
		s, err := NewServer(opts...)
		if err != nil {
			b.Fatal(err)
		}
		return s.Handler
	}
	return map[string]func(http.Handler) http.Handler{
		"Bare":           func(h http.Handler) http.Handler { return h },
		"RateLimit":      server(WithRateLimit(l)),
		"KeyedRateLimit": server(WithKeyedRateLimit(k, nil)),
		"LoadShed":       server(WithLoadShed(bh)),
		"Deadline":       server(WithDeadline(DefaultMaxTimeout)),
		"Stack":          server(WithDeadline(DefaultMaxTimeout), WithKeyedRateLimit(k, nil), WithLoadShed(bh)),
	}
}

var benchOrder = []string{"Bare", "RateLimit", "KeyedRateLimit", "LoadShed", "Deadline", "Stack"}

// BenchmarkMiddleware measures each middleware's admit path against the
// bare handler, with httptest.NewRecorder: one request and one recorder per
// goroutine, reused, so that what is measured is the middleware (the bare
// row is the handler call alone). "Deadline" (WithDeadline) is a request
// without TimeoutHeader; BenchmarkDeadlineHeader measures one with it.
func BenchmarkMiddleware(b *testing.B) {
	empty := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mws := benchMiddleware(b)
	for _, name := range benchOrder {
		h := mws[name](empty)
		b.Run(name+"/Serial", func(b *testing.B) {
			r := httptest.NewRequest("GET", "/v1/users/7", nil)
			r.RemoteAddr = "192.0.2.1:40000"
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		})
		b.Run(name+"/Parallel", func(b *testing.B) {
			var clients atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest("GET", "/v1/users/7", nil)
				r.RemoteAddr = fmt.Sprintf("192.0.2.%d:40000", clients.Add(1)) // a client per goroutine
				w := httptest.NewRecorder()
				for pb.Next() {
					h.ServeHTTP(w, r)
				}
				if w.Code != 200 {
					panic(w.Code)
				}
			})
		})
	}
}

// floorCtx is the least context a middleware can hand a handler with a
// deadline: its parent and the deadline, in one allocation.
type floorCtx struct {
	context.Context
	dl time.Time
}

func (c *floorCtx) Deadline() (time.Time, bool) { return c.dl, true }

// floor is the floor of WithDeadline as a middleware: it hands next, an
// http.Handler the compiler cannot see through (as the Server's next), a
// floorCtx with the deadline dl returns.
func floor(next http.Handler, dl func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(&floorCtx{r.Context(), dl()}))
	})
}

// BenchmarkDeadlineHeader measures WithDeadline on a request that carries
// TimeoutHeader: it must give the handler a new context with the deadline,
// hence a new *http.Request (net/http has no other way), which allocates.
//
// The floor (h=Floor) is that much and no more, as a middleware: one
// allocation for a context that carries the deadline (floorCtx, prepared
// without a clock read) and r.WithContext. h=FloorClock adds the clock
// read that a deadline (now + the timeout) needs, and h=FloorClockErr the
// second read that Err needs when no timer ends the context (the handler
// compares the clock with the deadline). The other rows are the
// Server around a handler that does nothing with its context (Empty),
// checks its Err once (Err), or calls Done, as a handler that selects on
// it or passes it to a client does (Done). parent=bg is a request whose
// context can never end (httptest's); parent=cancel one whose context can
// be cancelled, as net/http's can, one per goroutine.
func BenchmarkDeadlineHeader(b *testing.B) {
	for _, parent := range []string{"bg", "cancel"} {
		for _, h := range deadlineHandlers(b) {
			b.Run("h="+h.name+"/parent="+parent+"/run=Serial", func(b *testing.B) {
				r, cancel := deadlineRequest(parent)
				defer cancel()
				w := httptest.NewRecorder()
				b.ReportAllocs()
				for b.Loop() {
					h.h.ServeHTTP(w, r)
				}
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			})
			b.Run("h="+h.name+"/parent="+parent+"/run=Parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					r, cancel := deadlineRequest(parent)
					defer cancel()
					w := httptest.NewRecorder()
					for pb.Next() {
						h.h.ServeHTTP(w, r)
					}
					if w.Code != 200 {
						panic(w.Code)
					}
				})
			})
		}
	}
}

type namedHandler struct {
	name string
	h    http.Handler
}

// deadlineHandlers returns the rows of BenchmarkDeadlineHeader: the floors,
// then the Server around each handler.
func deadlineHandlers(b *testing.B) []namedHandler {
	s, err := NewServer(WithDeadline(DefaultMaxTimeout))
	if err != nil {
		b.Fatal(err)
	}
	dl := time.Now().Add(time.Hour)
	empty := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	return []namedHandler{
		{"Floor", floor(empty, func() time.Time { return dl })},
		{"FloorClock", floor(empty, func() time.Time { return time.Now().Add(time.Hour) })},
		// The floor of Err for a context with no timer: it must read the
		// clock again to know whether the deadline has passed.
		{"FloorClockErr", floor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d, _ := r.Context().Deadline(); !time.Now().Before(d) {
				w.WriteHeader(http.StatusGatewayTimeout)
			}
		}), func() time.Time { return time.Now().Add(time.Hour) })},
		{"Empty", s.Handler(empty)},
		{"Err", s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Context().Err() != nil {
				w.WriteHeader(http.StatusGatewayTimeout)
			}
		}))},
		{"Done", s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
				w.WriteHeader(http.StatusGatewayTimeout)
			default:
			}
		}))},
	}
}

// deadlineRequest returns a request that carries TimeoutHeader, whose
// context is Background (parent "bg") or cancellable ("cancel"), and what
// releases it.
func deadlineRequest(parent string) (*http.Request, func()) {
	r := httptest.NewRequest("GET", "/v1/users/7", nil)
	r.Header.Set(TimeoutHeader, "850")
	if parent == "bg" {
		return r, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return r.WithContext(ctx), cancel
}

// BenchmarkDeadlineHeaderVsFloor reads the rows of BenchmarkDeadlineHeader
// against the floor (h=Floor) within one benchmark: each goroutine runs
// the floor and the row's handler in turns, blocks of 100 requests each,
// and times each block, so that both see the same machine, however busy
// it is. It reports the row's time (sw-ns/op), the floor's (floor-ns/op)
// and their ratio (x-floor); ns/op is a pair of requests, one of each.
func BenchmarkDeadlineHeaderVsFloor(b *testing.B) {
	const block = 100
	hs := deadlineHandlers(b)
	fl := hs[0].h
	for _, parent := range []string{"bg", "cancel"} {
		for _, h := range hs[1:] {
			for _, par := range []bool{false, true} {
				name := "h=" + h.name + "/parent=" + parent + "/run=Serial"
				if par {
					name = "h=" + h.name + "/parent=" + parent + "/run=Parallel"
				}
				b.Run(name, func(b *testing.B) {
					var tf, ts atomic.Int64
					run := func(next func() bool) {
						r, cancel := deadlineRequest(parent)
						defer cancel()
						w := httptest.NewRecorder()
						for {
							t0 := time.Now()
							k := 0
							for ; k < block && next(); k++ {
								fl.ServeHTTP(w, r)
							}
							t1 := time.Now()
							tf.Add(int64(t1.Sub(t0)))
							if k < block {
								break
							}
							for k = 0; k < block && next(); k++ {
								h.h.ServeHTTP(w, r)
							}
							ts.Add(int64(time.Since(t1)))
							if k < block {
								break
							}
						}
						if w.Code != 200 {
							panic(w.Code)
						}
					}
					if par {
						b.RunParallel(func(pb *testing.PB) { run(pb.Next) })
					} else {
						i := 0
						run(func() bool { i++; return i <= b.N })
					}
					// Each block is half of b.N's requests, give or take one block.
					n := float64(b.N) / 2
					b.ReportMetric(float64(tf.Load())/n, "floor-ns/op")
					b.ReportMetric(float64(ts.Load())/n, "sw-ns/op")
					b.ReportMetric(float64(ts.Load())/float64(tf.Load()), "x-floor")
				})
			}
		}
	}
}

// BenchmarkTransport measures a GET over loopback that succeeds at once,
// through the bare base transport and through a Transport wrapping it
// (retries and budget on, as by default), without and with a context
// deadline (with one, each attempt is a clone carrying TimeoutHeader).
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport)
	base.MaxIdleConnsPerHost = 64
	defer base.CloseIdleConnections()
	tr, err := NewTransport(base)
	if err != nil {
		b.Fatal(err)
	}
	get := func(b *testing.B, rt http.RoundTripper, req *http.Request) {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	for _, rt := range []struct {
		name string
		rt   http.RoundTripper
	}{{"Bare", base}, {"Seawall", tr}} {
		for _, deadline := range []bool{false, true} {
			name := rt.name
			if deadline {
				name += "Deadline"
			}
			newReq := func(b *testing.B) *http.Request {
				ctx := context.Background()
				if deadline {
					c, cancel := context.WithTimeout(ctx, time.Hour)
					b.Cleanup(cancel)
					ctx = c
				}
				req, err := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
				if err != nil {
					b.Fatal(err)
				}
				return req
			}
			b.Run(name+"/Serial", func(b *testing.B) {
				req := newReq(b)
				b.ReportAllocs()
				for b.Loop() {
					get(b, rt.rt, req)
				}
			})
			b.Run(name+"/Parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req := newReq(b)
					for pb.Next() {
						get(b, rt.rt, req)
					}
				})
			})
		}
	}
}

// BenchmarkTransportOverhead isolates the Transport's own cost on a
// first-try success: the base is a fake that returns a canned response
// without any I/O, so the difference from the bare row is the Transport.
// The Breaker rows add a breaker group, keyed per host and per host and
// method.
func BenchmarkTransportOverhead(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	tr, err := NewTransport(base)
	if err != nil {
		b.Fatal(err)
	}
	withBreakers := func(key BreakerKeyFunc) *Transport {
		g, err := breaker.NewGroup(breaker.Config{}, 0)
		if err != nil {
			b.Fatal(err)
		}
		tr, err := NewTransport(base, WithBreakers(g, key))
		if err != nil {
			b.Fatal(err)
		}
		return tr
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, rt := range []struct {
		name string
		rt   http.RoundTripper
		ctx  context.Context
	}{
		{"Bare", base, context.Background()},
		{"Seawall", tr, context.Background()},
		{"SeawallDeadline", tr, ctx},
		{"SeawallBreakerPerHost", withBreakers(BreakerPerHost), context.Background()},
		{"SeawallBreakerPerHostMethod", withBreakers(BreakerPerHostMethod), context.Background()},
	} {
		req, err := http.NewRequestWithContext(rt.ctx, "GET", "http://account.internal/v1/users/7", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(rt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// notObserving is an AttemptObserver that observes no call.
type notObserving struct{}

func (notObserving) Observing(context.Context) bool           { return false }
func (notObserving) Attempt(context.Context, seawall.Attempt) {}

// discardObserver observes every call and drops what it hears.
type discardObserver struct{}

func (discardObserver) Observing(context.Context) bool           { return true }
func (discardObserver) Attempt(context.Context, seawall.Attempt) {}

// BenchmarkTransportObserver measures what WithAttemptObserver costs a
// first-try success over a fake base (no I/O): without an observer, with
// one that observes no call (which must cost the same, within noise, and
// allocate the same), and with one that observes every call and discards
// its attempts (the observed path's own cost, without any telemetry).
// The rows are named for benchstat: -col /observer compares them.
func BenchmarkTransportObserver(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	for _, rt := range []struct {
		name string
		opts []TransportOption
	}{
		{"observer=none", nil},
		{"observer=not_observing", []TransportOption{WithAttemptObserver(notObserving{})}},
		{"observer=observing", []TransportOption{WithAttemptObserver(discardObserver{})}},
	} {
		tr, err := NewTransport(base, rt.opts...)
		if err != nil {
			b.Fatal(err)
		}
		req, err := http.NewRequest("GET", "http://account.internal/v1/users/7", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(rt.name+"/Serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(rt.name+"/Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tr.RoundTrip(req); err != nil {
						panic(err)
					}
				}
			})
		})
	}
}

// BenchmarkTransportHedge measures what WithHedge costs a first-try
// success that answers before the hedge delay (no hedge is sent), over a
// fake base without I/O that makes a response per call: the transport
// with retries as by default, without and with a fixed-delay hedge. The
// rows are named for benchstat: -col /hedge compares them.
func BenchmarkTransportHedge(b *testing.B) {
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	for _, tt := range []struct {
		name string
		opts []TransportOption
	}{
		{"hedge=off", nil},
		{"hedge=fixed", []TransportOption{WithHedge(hedge.Config{Delay: time.Hour})}},
	} {
		tr, err := NewTransport(base, tt.opts...)
		if err != nil {
			b.Fatal(err)
		}
		req, err := http.NewRequestWithContext(context.Background(), "GET", "http://account.internal/v1/users/7", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
