// Command prometheus serves the metrics of a few seawall policies in the
// Prometheus exposition format, on /metrics, while it drives traffic
// through them so that the metrics move:
//
//	go run ./examples/prometheus -addr 127.0.0.1:9464
//	curl -s 127.0.0.1:9464/metrics | grep seawall_
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"math/rand/v2"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/otelseawall"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9464", "address to serve /metrics on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg, br, rt, rl, err := policies()
	if err != nil {
		log.Fatal(err)
	}
	h, shutdown, err := Handler(reg)
	if err != nil {
		log.Fatal(err)
	}
	defer shutdown()

	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	go drive(ctx, br, rt, rl)
	log.Printf("serving metrics on http://%s/metrics", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// policies builds a registry with a breaker, a retry (and its budget) and a
// rate limiter.
func policies() (*registry.Registry, *breaker.Breaker, *retry.Retry, *ratelimit.Limiter, error) {
	reg, err := registry.New()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	br, err := breaker.New(breaker.Config{ConsecutiveFailures: 3, OpenDuration: 2 * time.Second})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rt, err := retry.New(retry.Config{MaxAttempts: 3, Delay: 10 * time.Millisecond})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rl, err := ratelimit.New(ratelimit.Config{Rate: 50, Burst: 10})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	for name, p := range map[string]any{"accounts": br, "accounts.retry": rt, "login": rl} {
		if err := reg.Register(name, p); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	return reg, br, rt, rl, nil
}

// Handler reports reg's policies through an OpenTelemetry meter provider
// with a Prometheus exporter, and returns the handler that serves them on
// /metrics, and a function that stops reporting.
func Handler(reg *registry.Registry) (http.Handler, func(), error) {
	promReg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(promReg))
	if err != nil {
		return nil, nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	m, err := otelseawall.NewMetrics(reg, otelseawall.WithMeterProvider(mp))
	if err != nil {
		_ = mp.Shutdown(context.Background())
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
	return mux, func() {
		_ = m.Close()
		_ = mp.Shutdown(context.Background())
	}, nil
}

// drive calls a flaky dependency through the policies until ctx ends: it
// fails a third of the time, and for a second every ten seconds all the
// time, which trips the breaker.
func drive(ctx context.Context, br *breaker.Breaker, rt *retry.Retry, rl *ratelimit.Limiter) {
	errDown := errors.New("dependency down")
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !rl.Allow() {
			continue
		}
		_ = rt.Do(ctx, func(ctx context.Context) error {
			return br.Do(ctx, func(context.Context) error {
				if time.Since(start)%(10*time.Second) < time.Second || rand.IntN(3) == 0 {
					return errDown
				}
				return nil
			})
		})
	}
}
