package grpcmw_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/grpcmw"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

type accounts struct {
	testpb.UnimplementedTestServiceServer
}

func (accounts) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

// A server that sheds load with pushback, and a client that retries what
// the server refused, when the server says, with a breaker per method.
func Example() {
	// Server: 10 calls a second (a burst of 1), at most 64 at once.
	limiter, err := ratelimit.New(ratelimit.Config{Rate: 10, Burst: 1})
	if err != nil {
		log.Fatal(err)
	}
	inFlight, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 64})
	if err != nil {
		log.Fatal(err)
	}
	s, err := grpcmw.NewServer(grpcmw.WithRateLimit(limiter), grpcmw.WithLoadShed(inFlight, codes.Unavailable))
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(s.Unary), grpc.ChainStreamInterceptor(s.Stream))
	testpb.RegisterTestServiceServer(srv, accounts{})
	lis := bufconn.Listen(1 << 20) // in production: net.Listen("tcp", addr)
	go srv.Serve(lis)
	defer srv.Stop()

	// Client: up to 3 attempts on UNAVAILABLE or RESOURCE_EXHAUSTED.
	breakers, err := breaker.NewGroup(breaker.Config{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	c, err := grpcmw.NewClient(
		grpcmw.WithRetry(retry.Config{MaxAttempts: 3}),
		grpcmw.WithRetryCodes(codes.Unavailable, codes.ResourceExhausted),
		grpcmw.WithBreakers(breakers, grpcmw.BreakerPerMethod))
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///accounts",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDisableRetry(), // this package retries; gRPC's own would multiply
		grpc.WithChainUnaryInterceptor(c.Unary),
		grpc.WithChainStreamInterceptor(c.Stream))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = client.EmptyCall(ctx, &testpb.Empty{})
	fmt.Println(status.Code(err))
	// Refused with a pushback of 100ms: the client waits exactly that, and
	// is served.
	_, err = client.EmptyCall(ctx, &testpb.Empty{})
	fmt.Println(status.Code(err))
	// A per-call override: this call is made once.
	_, err = client.EmptyCall(ctx, &testpb.Empty{}, grpcmw.CallMaxAttempts(1))
	fmt.Println(status.Code(err))
	// Output:
	// OK
	// OK
	// ResourceExhausted
}

// slowOnce is a service whose first call waits until its caller gives up
// (a replica in a garbage-collection pause, say), and whose other calls
// answer at once.
type slowOnce struct {
	testpb.UnimplementedTestServiceServer
	calls atomic.Int32
}

func (s *slowOnce) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s.calls.Add(1) == 1 {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

// A client that hedges its unary calls: an attempt that has not answered
// after 10ms gets a second one alongside it, and the first answer wins.
// In production, leave Delay at 0 for the default: the 95th percentile of
// recent latencies.
func ExampleWithHedge() {
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, &slowOnce{})
	lis := bufconn.Listen(1 << 20)
	go srv.Serve(lis)
	defer srv.Stop()

	c, err := grpcmw.NewClient(grpcmw.WithHedge(hedge.Config{Delay: 10 * time.Millisecond, MaxAttempts: 2}))
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///accounts",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDisableRetry(),
		grpc.WithChainUnaryInterceptor(c.Unary))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("balance")}})
	fmt.Println(status.Code(err), string(resp.GetPayload().GetBody()))
	fmt.Println("hedges:", c.HedgeMetrics().Hedges)
	// Output:
	// OK balance
	// hedges: 1
}
