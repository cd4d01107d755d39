package httpmw_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/httpmw"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

// A service protected at its door: deadlines first, then a per-client rate
// limit, then a bound on the requests running at once.
func Example() {
	perClient, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 50, Burst: 100}})
	if err != nil {
		log.Fatal(err)
	}
	inFlight, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 64, MaxWaiting: 16, MaxWait: 50 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	s, err := httpmw.NewServer(
		httpmw.WithDeadline(httpmw.DefaultMaxTimeout),         // 499/504 for requests nobody waits for
		httpmw.WithKeyedRateLimit(perClient, httpmw.RemoteIP), // 429 + Retry-After, per client
		httpmw.WithLoadShed(inFlight),                         // 503
		httpmw.WithDefaultRetryAfter(time.Second))             // + Retry-After, for the 503s
	if err != nil {
		log.Fatal(err) // names the bad option
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	h := s.Handler(api)

	srv := httptest.NewServer(h) // in production: http.ListenAndServe(addr, h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output: 200 hello
}

func ExampleWithRateLimit() {
	l, err := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1}) // 1 request a second
	if err != nil {
		log.Fatal(err)
	}
	s, err := httpmw.NewServer(httpmw.WithRateLimit(l))
	if err != nil {
		log.Fatal(err)
	}
	h := s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		fmt.Println(w.Code, w.Header()["Retry-After"])
	}
	// Output:
	// 200 []
	// 429 [1]
}

// Per-route limits on an http.ServeMux: a Server for the route, around the
// route's handler.
func ExampleServer_Handler_route() {
	l, err := ratelimit.New(ratelimit.Config{Rate: 10})
	if err != nil {
		log.Fatal(err)
	}
	login, err := httpmw.NewServer(httpmw.WithRateLimit(l))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/login", login.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "welcome")
	})))
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "user", r.PathValue("id")) // not limited
	})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("POST", "/v1/login", nil))
	fmt.Print(w.Body)
	// Output: welcome
}

// Behind a load balancer at 10.0.0.0/8, key clients by the address it
// reports in X-Forwarded-For; a client talking to the server directly is
// keyed by its own address, whatever it sends.
func ExampleClientIP() {
	key, err := httpmw.ClientIP("X-Forwarded-For", "10.0.0.0/8")
	if err != nil {
		log.Fatal(err)
	}
	viaProxy := httptest.NewRequest("GET", "/", nil)
	viaProxy.RemoteAddr = "10.1.2.3:5555"
	viaProxy.Header.Set("X-Forwarded-For", "198.51.100.7")
	direct := httptest.NewRequest("GET", "/", nil)
	direct.RemoteAddr = "203.0.113.9:4444"
	direct.Header.Set("X-Forwarded-For", "198.51.100.7")
	fmt.Println(key(viaProxy))
	fmt.Println(key(direct))
	// Output:
	// 198.51.100.7
	// 203.0.113.9
}

func ExampleWithKeyedRateLimit() {
	perKey, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1}})
	if err != nil {
		log.Fatal(err)
	}
	s, err := httpmw.NewServer(httpmw.WithKeyedRateLimit(perKey, httpmw.HeaderKey("X-Api-Key")))
	if err != nil {
		log.Fatal(err)
	}
	h := s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, k := range []string{"alpha", "alpha", "beta"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Api-Key", k)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(k, w.Code)
	}
	// Output:
	// alpha 200
	// alpha 429
	// beta 200
}

// Rejections as RFC 9457 problem details.
func ExampleWithRejectFunc() {
	problem := func(w http.ResponseWriter, r *http.Request, rej httpmw.Rejection) {
		if s := httpmw.RetryAfterSeconds(rej.RetryAfter); s > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(s))
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(rej.Status)
		fmt.Fprintf(w, `{"title":%q,"status":%d}`, http.StatusText(rej.Status), rej.Status)
	}
	full, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
	if err != nil {
		log.Fatal(err)
	}
	full.TryAcquire() // the only slot is taken
	s, err := httpmw.NewServer(httpmw.WithLoadShed(full), httpmw.WithRejectFunc(problem), httpmw.WithDefaultRetryAfter(2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	h := s.Handler(http.NotFoundHandler())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Println(w.Code, w.Header().Get("Retry-After"), w.Body)
	// Output: 503 2 {"title":"Service Unavailable","status":503}
}

// A handler behind WithDeadline gets the client's deadline from
// TimeoutHeader; a request whose time is up is not started.
func ExampleWithDeadline() {
	s, err := httpmw.NewServer(httpmw.WithDeadline(30 * time.Second))
	if err != nil {
		log.Fatal(err)
	}
	h := s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := r.Context().Deadline()
		fmt.Println("started; deadline:", ok)
	}))
	for _, v := range []string{"850", "0"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(httpmw.TimeoutHeader, v)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(v, "→", w.Code)
	}
	// Output:
	// started; deadline: true
	// 850 → 200
	// 0 → 504
}

// A client whose requests are retried on 503 (after the server's
// Retry-After), with a breaker per host and a timeout per attempt.
func ExampleNewTransport() {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()

	breakers, err := breaker.NewGroup(breaker.Config{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	tr, err := httpmw.NewTransport(nil, // nil: http.DefaultTransport
		httpmw.WithRetry(retry.Config{MaxAttempts: 3, Delay: 10 * time.Millisecond}),
		httpmw.WithBreakers(breakers, httpmw.BreakerPerHost),
		httpmw.WithAttemptTimeout(2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	fmt.Println("attempts:", calls.Load())
	client.CloseIdleConnections()
	// Output:
	// 200 ok
	// attempts: 2
}
