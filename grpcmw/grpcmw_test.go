package grpcmw

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/seawall-go/seawall/internal/bubble"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// service is the test service of the grpc module, answering each call as
// its fields say and recording what it was sent.
type service struct {
	testpb.UnimplementedTestServiceServer

	mu       sync.Mutex
	calls    int      // calls begun, all methods
	payloads []string // the payload of each UnaryCall / StreamingOutputCall
	// fail answers call n (from 1) with an error, and a pushback trailer
	// if it is not ""; nil lets it succeed.
	fail func(n int) (pushback string, err error)
	// block makes a call wait until its context ends; blockFirst only the
	// first call.
	block, blockFirst bool
	// pause is how long StreamingOutputCall waits between its responses:
	// set only by tests that run in a synctest bubble (virtual time).
	pause time.Duration
	// sendFirst makes StreamingOutputCall send one response before it fails.
	sendFirst bool
	// sendHeader makes StreamingOutputCall send its response header first,
	// before it blocks or fails; with header in it, if not nil.
	sendHeader bool
	header     metadata.MD
}

func (s *service) begin(ctx context.Context, payload string) (int, string, error) {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.payloads = append(s.payloads, payload)
	fail, block := s.fail, s.block || s.blockFirst && n == 1
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return n, "", status.FromContextError(ctx.Err()).Err()
	}
	if fail == nil {
		return n, "", nil
	}
	pushback, err := fail(n)
	return n, pushback, err
}

func (s *service) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *service) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	_, pushback, err := s.begin(ctx, "")
	if pushback != "" {
		grpc.SetTrailer(ctx, metadata.Pairs(PushbackKey, pushback))
	}
	if err != nil {
		return nil, err
	}
	return &testpb.Empty{}, nil
}

func (s *service) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_, pushback, err := s.begin(ctx, string(req.GetPayload().GetBody()))
	if pushback != "" {
		grpc.SetTrailer(ctx, metadata.Pairs(PushbackKey, pushback))
	}
	if err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (s *service) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	if s.sendHeader {
		if err := stream.SendHeader(s.header); err != nil {
			return err
		}
	}
	_, pushback, err := s.begin(stream.Context(), string(req.GetPayload().GetBody()))
	if pushback != "" {
		stream.SetTrailer(metadata.Pairs(PushbackKey, pushback))
	}
	if s.sendFirst || err == nil {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	for range 2 {
		if s.pause > 0 {
			bubble.Sleep(s.pause) // virtual time: only TestServerStreamAttemptTimeout sets it, in a bubble
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
	return nil
}

func (s *service) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	_, _, err := s.begin(stream.Context(), "")
	if err != nil {
		return err
	}
	size := 0
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(size)})
		}
		if err != nil {
			return err
		}
		size += len(m.GetPayload().GetBody())
	}
}

// serve runs svc on a grpc server over bufconn, with the given server
// options, and returns a client for it whose connection has the given dial
// options (and grpc's own retries off). Both are stopped when the test
// ends.
func serve(t testing.TB, svc testpb.TestServiceServer, sopts []grpc.ServerOption, dopts ...grpc.DialOption) testpb.TestServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(sopts...)
	testpb.RegisterTestServiceServer(srv, svc)
	go srv.Serve(lis)
	dopts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDisableRetry(),
	}, dopts...)
	conn, err := grpc.NewClient("passthrough:///bufnet", dopts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
	})
	return testpb.NewTestServiceClient(conn)
}

// withClient returns the dial options that install c's interceptors.
func withClient(c *Client) []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(c.Unary), grpc.WithChainStreamInterceptor(c.Stream)}
}

// withServer returns the server options that install s's interceptors.
func withServer(s *Server) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.Unary), grpc.ChainStreamInterceptor(s.Stream)}
}

func newClient(t testing.TB, opts ...ClientOption) *Client {
	t.Helper()
	c, err := NewClient(opts...)
	require.NoError(t, err)
	return c
}

func newServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	s, err := NewServer(opts...)
	require.NoError(t, err)
	return s
}

// failFirst fails the first n calls with code (and pushback).
func failFirst(n int, code codes.Code, pushback string) func(int) (string, error) {
	return func(i int) (string, error) {
		if i <= n {
			return pushback, status.Error(code, "try again")
		}
		return "", nil
	}
}

// always fails every call with code (and pushback).
func always(code codes.Code, pushback string) func(int) (string, error) {
	return func(int) (string, error) { return pushback, status.Error(code, "no") }
}
