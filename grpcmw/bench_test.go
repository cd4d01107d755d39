package grpcmw

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// benchServer returns a Server with every policy on its admit path: a
// limiter, a per-peer limiter and a bulkhead, all far above the benchmark's
// rate.
func benchServer(b *testing.B) *Server {
	b.Helper()
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1e9, Burst: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	return newServer(b, WithRateLimit(newLimiter(b, 1e9, 1e9)), WithKeyedRateLimit(k, nil), WithLoadShed(bh, codes.Unavailable))
}

// BenchmarkInterceptors measures a unary call that succeeds at once over
// bufconn, with no interceptor (Bare), with interceptors that do nothing on
// both sides (what grpc's interceptor machinery costs), with the client interceptor (retries
// on, budget on; and with a breaker per method, with or without retries,
// and a throttle), with the server
// interceptor (every policy), and with both.
func BenchmarkInterceptors(b *testing.B) {
	g, err := breaker.NewGroup(breaker.Config{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	retrying := func(b *testing.B) []grpc.DialOption { return withClient(newClient(b, WithRetry(retry.Config{}))) }
	for _, tc := range []struct {
		name   string
		server func(*testing.B) []grpc.ServerOption
		client func(*testing.B) []grpc.DialOption
	}{
		{"Bare", nil, nil},
		{"NoopInterceptors", func(*testing.B) []grpc.ServerOption {
			return []grpc.ServerOption{grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				return h(ctx, req)
			})}
		}, func(*testing.B) []grpc.DialOption {
			return []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(ctx, method, req, reply, cc, opts...)
			})}
		}},
		{"ClientRetry", nil, retrying},
		{"ClientRetryBreaker", nil, func(b *testing.B) []grpc.DialOption {
			return withClient(newClient(b, WithRetry(retry.Config{}), WithBreakers(g, BreakerPerMethod)))
		}},
		{"ClientBreaker", nil, func(b *testing.B) []grpc.DialOption {
			return withClient(newClient(b, WithBreakers(g, BreakerPerMethod)))
		}},
		{"ClientBreakerThrottle", nil, func(b *testing.B) []grpc.DialOption {
			return withClient(newClient(b, WithBreakers(g, BreakerPerMethod), WithThrottle(newThrottle(b))))
		}},
		{"ClientRetryBreakerThrottle", nil, func(b *testing.B) []grpc.DialOption {
			return withClient(newClient(b, WithRetry(retry.Config{}), WithBreakers(g, BreakerPerMethod), WithThrottle(newThrottle(b))))
		}},
		{"Server", func(b *testing.B) []grpc.ServerOption { return withServer(benchServer(b)) }, nil},
		{"Both", func(b *testing.B) []grpc.ServerOption { return withServer(benchServer(b)) }, retrying},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var sopts []grpc.ServerOption
			var dopts []grpc.DialOption
			if tc.server != nil {
				sopts = tc.server(b)
			}
			if tc.client != nil {
				dopts = tc.client(b)
			}
			client := serve(b, &service{}, sopts, dopts...)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// newThrottle returns a throttle with the default settings.
func newThrottle(b *testing.B) *throttle.Throttle {
	b.Helper()
	th, err := throttle.New(throttle.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return th
}

// BenchmarkServerAdmit isolates the server interceptor's admit path: a call
// of Server.Unary around an empty handler, against calling the handler
// directly, with a TCP peer in the context (the per-peer key).
func BenchmarkServerAdmit(b *testing.B) {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}})
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	b.Run("Bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			handler(ctx, nil)
		}
	})
	b.Run("Server", func(b *testing.B) {
		s := benchServer(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Unary(ctx, nil, info, handler); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHedge measures what hedging costs a unary call that answers at
// once over bufconn, the common case: with WithHedge (a fixed delay of an
// hour, so that no hedge ever starts: the timer is armed and stopped)
// against the same client without it, alone and with retries and a
// breaker, serial and in parallel.
func BenchmarkHedge(b *testing.B) {
	g, err := breaker.NewGroup(breaker.Config{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	hedging := WithHedge(hedge.Config{Delay: time.Hour})
	for _, tc := range []struct {
		name string
		opts []ClientOption
	}{
		{"Client", nil},
		{"ClientHedge", []ClientOption{hedging}},
		{"ClientRetryBreaker", []ClientOption{WithRetry(retry.Config{}), WithBreakers(g, BreakerPerMethod)}},
		{"ClientRetryBreakerHedge", []ClientOption{WithRetry(retry.Config{}), WithBreakers(g, BreakerPerMethod), hedging}},
	} {
		client := serve(b, &service{}, nil, withClient(newClient(b, tc.opts...))...)
		ctx := context.Background()
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkHedgeInterceptor isolates the client interceptor's cost on the
// fast path, without a connection: Client.Unary around an invoker that
// answers at once, with and without WithHedge (a fixed delay of an hour),
// against calling the invoker directly (Bare).
func BenchmarkHedgeInterceptor(b *testing.B) {
	const method = "/grpc.testing.TestService/EmptyCall"
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := context.Background()
	req, reply := &testpb.Empty{}, &testpb.Empty{}
	for _, tc := range []struct {
		name string
		opts []ClientOption
	}{
		{"Client", nil},
		{"ClientHedge", []ClientOption{WithHedge(hedge.Config{Delay: time.Hour})}},
	} {
		c := newClient(b, tc.opts...)
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Unary(ctx, method, req, reply, nil, invoker); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				reply := &testpb.Empty{}
				for pb.Next() {
					if err := c.Unary(ctx, method, req, reply, nil, invoker); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("Bare/serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := invoker(ctx, method, req, reply, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
