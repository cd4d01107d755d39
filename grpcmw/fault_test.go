package grpcmw

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/fault"
)

func newInjector(t testing.TB, c fault.Config) *fault.Injector {
	t.Helper()
	inj, err := fault.New(c)
	require.NoError(t, err)
	return inj
}

func TestServerFaultCode(t *testing.T) {
	inj := newInjector(t, fault.Config{ErrorRate: 1})
	svc := &service{}
	client := serve(t, svc, withServer(newServer(t, WithFaultInjection(inj, codes.Unavailable), WithDefaultPushback(time.Second))))

	_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
	require.NoError(t, err, "off by default")

	inj.Enable()
	var trailer metadata.MD
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Equal(t, "grpcmw: injected fault", status.Convert(err).Message())
	assert.Empty(t, trailer.Get(PushbackKey), "a fault is a failure, not a refusal: no pushback, not even the default")

	stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), "streams get faults too")

	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-envoy-fault-abort-request", "0")
	inj.Disable()
	_, err = client.EmptyCall(ctx, &testpb.Empty{})
	require.NoError(t, err, "no metadata turns faults on")
	assert.Equal(t, 2, svc.count())
	assert.Equal(t, fault.Metrics{Calls: 2, Selected: 2, Errors: 2}, inj.Metrics())
}

func TestServerFaultPushback(t *testing.T) {
	inj := newInjector(t, fault.Config{Enabled: true, ErrorRate: 1,
		Err: seawall.WithRetryAfter(seawall.NewRejection("overloaded"), 250*time.Millisecond)})
	client := serve(t, &service{}, withServer(newServer(t, WithFaultInjection(inj, codes.ResourceExhausted))))
	var trailer metadata.MD
	_, err := client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Equal(t, []string{"250"}, trailer.Get(PushbackKey), "an error with a hint rehearses overload")
}

// TestServerFaultDelay: a delay within the client's deadline lets the call
// run late; one beyond it ends with DEADLINE_EXCEEDED when the deadline
// passes, without running the handler.
func TestServerFaultDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := newInjector(t, fault.Config{Enabled: true, LatencyRate: 1, Latency: 200 * time.Millisecond})
		svc := &service{}
		client := serve(t, svc, withServer(newServer(t, WithFaultInjection(inj, codes.Unavailable))))

		start := time.Now()
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		require.NoError(t, err)
		assert.Equal(t, 200*time.Millisecond, time.Since(start))

		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err = client.EmptyCall(ctx, &testpb.Empty{})
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
		assert.Equal(t, 50*time.Millisecond, time.Since(start))
		synctest.Wait()
		assert.Equal(t, 1, svc.count())
		assert.Equal(t, uint64(2), inj.Metrics().Delays)
	})
}

func TestServerFaultOptionErrors(t *testing.T) {
	inj := newInjector(t, fault.Config{})
	for _, tc := range []struct {
		opt  ServerOption
		want string
	}{
		{WithFaultInjection(nil, codes.Unavailable), "grpcmw: WithFaultInjection with a nil injector"},
		{WithFaultInjection(inj, codes.OK), "grpcmw: WithFaultInjection code OK is not an error code"},
		{WithFaultInjection(inj, codes.Code(42)), "grpcmw: WithFaultInjection code Code(42) is not an error code"},
	} {
		s, err := NewServer(tc.opt)
		assert.Nil(t, s)
		assert.EqualError(t, err, tc.want)
	}
}

func TestServerFaultDisabledAllocs(t *testing.T) {
	inj := newInjector(t, fault.Config{ErrorRate: 1})
	s := newServer(t, WithFaultInjection(inj, codes.Unavailable))
	ctx := context.Background()
	handler := func(context.Context, any) (any, error) { return nil, nil }
	info := &grpc.UnaryServerInfo{}
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = s.Unary(ctx, nil, info, handler) }))
}
