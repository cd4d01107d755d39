package grpcmw_test

import (
	"context"
	"fmt"
	"log"
	"net"
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
