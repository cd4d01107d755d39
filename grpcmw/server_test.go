package grpcmw

import (
	"context"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

func newLimiter(t testing.TB, rate float64, burst int) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst})
	require.NoError(t, err)
	return l
}

func TestServerRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{}
		client := serve(t, svc, withServer(newServer(t, WithRateLimit(newLimiter(t, 0.4, 1)))))
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		require.NoError(t, err)

		var trailer metadata.MD
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
		assert.Equal(t, codes.ResourceExhausted, status.Code(err))
		assert.Equal(t, "grpcmw: rate limited; retry in 2.5s", status.Convert(err).Message())
		assert.Equal(t, []string{"2500"}, trailer.Get(PushbackKey))

		bubble.Sleep(time.Second)
		stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
		require.NoError(t, err)
		_, err = stream.Recv()
		assert.Equal(t, codes.ResourceExhausted, status.Code(err))
		assert.Equal(t, []string{"1500"}, stream.Trailer().Get(PushbackKey), "streams carry pushback too")
		assert.Equal(t, 1, svc.count(), "refused calls never reach the handler")
	})
}

func TestServerAllowerPushback(t *testing.T) {
	svc := &service{}
	client := serve(t, svc, withServer(newServer(t, WithRateLimit(&allower{}), WithDefaultPushback(300*time.Millisecond))))
	var trailer metadata.MD
	_, err := client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Equal(t, []string{"300"}, trailer.Get(PushbackKey))

	client = serve(t, svc, withServer(newServer(t, WithRateLimit(&allower{}))))
	trailer = nil
	_, err = client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Empty(t, trailer.Get(PushbackKey), "no hint, no default: no pushback")
	assert.Zero(t, svc.count())
}

// TestServerPushbackRoundedUp checks that a wait with a fraction of a
// millisecond is rounded up, the same way in the trailer and in the
// status message: a client told "3" finds the server ready, and the text
// says what the trailer says.
func TestServerPushbackRoundedUp(t *testing.T) {
	client := serve(t, &service{}, withServer(newServer(t, WithRateLimit(&allower{}), WithDefaultPushback(2400*time.Microsecond))))
	var trailer metadata.MD
	_, err := client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Equal(t, []string{"3"}, trailer.Get(PushbackKey))
	assert.Equal(t, "grpcmw: rate limited; retry in 3ms", status.Convert(err).Message())
}

// allower is a limiter with only Allow.
type allower struct{ ok bool }

func (a *allower) Allow() bool { return a.ok }

func TestServerKeyedByMetadata(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1, Burst: 1}})
		require.NoError(t, err)
		svc := &service{}
		client := serve(t, svc, withServer(newServer(t, WithKeyedRateLimit(k, MetadataKey("x-api-key")))))
		call := func(key string) codes.Code {
			ctx := metadata.AppendToOutgoingContext(t.Context(), "x-api-key", key)
			_, err := client.EmptyCall(ctx, &testpb.Empty{})
			return status.Code(err)
		}
		assert.Equal(t, codes.OK, call("alpha"))
		assert.Equal(t, codes.ResourceExhausted, call("alpha"))
		assert.Equal(t, codes.OK, call("beta"), "another key, another bucket")
		var trailer metadata.MD
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-api-key", "secret-key-42")
		client.EmptyCall(ctx, &testpb.Empty{})
		_, err = client.EmptyCall(ctx, &testpb.Empty{}, grpc.Trailer(&trailer))
		assert.NotContains(t, err.Error(), "secret-key-42", "keys stay inside")
		assert.Equal(t, []string{"1000"}, trailer.Get(PushbackKey))
	})
}

// TestServerKeyedLimiter checks that any ratelimit.KeyedLimiter will do
// (a limit a fleet shares), its refusal's hint becoming the pushback.
func TestServerKeyedLimiter(t *testing.T) {
	k := &refuser{after: 700 * time.Millisecond}
	client := serve(t, &service{}, withServer(newServer(t, WithKeyedRateLimit(k, MetadataKey("tenant")))))
	var trailer metadata.MD
	ctx := metadata.AppendToOutgoingContext(t.Context(), "tenant", "acme")
	_, err := client.EmptyCall(ctx, &testpb.Empty{}, grpc.Trailer(&trailer))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Equal(t, []string{"700"}, trailer.Get(PushbackKey))
	assert.Equal(t, []string{"acme"}, k.keys)
}

// refuser is a KeyedLimiter that refuses every event, with a hint.
type refuser struct {
	after time.Duration
	keys  []string
}

func (r *refuser) Try(key string, n int) error {
	r.keys = append(r.keys, strings.Clone(key))
	return seawall.WithRetryAfter(ratelimit.ErrLimited, r.after)
}

// TestServerKeyedByPeer runs over a real loopback listener: the default key
// is the peer's address.
func TestServerKeyedByPeer(t *testing.T) {
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 0.001, Burst: 2}})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(withServer(newServer(t, WithKeyedRateLimit(k, nil)))...)
	testpb.RegisterTestServiceServer(srv, &service{})
	go srv.Serve(lis)
	defer srv.Stop()
	var codesSeen []codes.Code
	for range 2 { // two connections from one address share its bucket
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		client := testpb.NewTestServiceClient(conn)
		for range 2 {
			_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
			codesSeen = append(codesSeen, status.Code(err))
		}
		conn.Close()
	}
	assert.Equal(t, []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted, codes.ResourceExhausted}, codesSeen)
	assert.Equal(t, 1, k.Len())
}

func TestPeerKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, "\xc0\x00\x02\x01"}, // 16-byte form: same key as 4-byte
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 2}, "\xc0\x00\x02\x01"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}, string(net.ParseIP("2001:db8::1"))},
		{&net.UnixAddr{Name: "/run/svc.sock", Net: "unix"}, "/run/svc.sock"},
		{fakeAddr("10.0.0.1:443"), "10.0.0.1"},
	} {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: tc.addr})
		assert.Equal(t, tc.want, peerKey(ctx), "%v", tc.addr)
	}
	assert.Equal(t, "", peerKey(context.Background()))
}

type fakeAddr string

func (a fakeAddr) Network() string { return "fake" }
func (a fakeAddr) String() string  { return string(a) }

func TestServerLoadShed(t *testing.T) {
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted} {
		synctest.Test(t, func(t *testing.T) {
			b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
			require.NoError(t, err)
			svc := &service{block: true}
			client := serve(t, svc, withServer(newServer(t, WithLoadShed(b, code), WithDefaultPushback(250*time.Millisecond))))
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				client.EmptyCall(ctx, &testpb.Empty{})
				close(done)
			}()
			synctest.Wait()
			require.Equal(t, 1, svc.count())

			var trailer metadata.MD
			_, err = client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
			assert.Equal(t, code, status.Code(err))
			assert.Equal(t, "grpcmw: overloaded; retry in 250ms", status.Convert(err).Message())
			assert.Equal(t, []string{"250"}, trailer.Get(PushbackKey))
			assert.Equal(t, 1, svc.count())

			cancel()
			<-done
			synctest.Wait()
			svc.mu.Lock()
			svc.block = false
			svc.mu.Unlock()
			_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
			assert.NoError(t, err, "the slot was given back when the handler returned")
		})
	}
}

func newAdaptive(t testing.TB, cfg adaptive.Config) *adaptive.Limiter {
	t.Helper()
	l, err := adaptive.New(cfg)
	require.NoError(t, err)
	return l
}

// TestServerAdaptiveLimit: over a real grpc server (bufconn), a call over
// the adaptive limit ends with UNAVAILABLE and the limiter's hint as
// pushback (not the server's default), without reaching its handler; the
// permit comes back when the handler returns, also for a bulkhead in
// front, and a stream holds its permit until it ends.
func TestServerAdaptiveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newAdaptive(t, adaptive.Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
		b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 5})
		require.NoError(t, err)
		svc := &service{block: true}
		client := serve(t, svc, withServer(newServer(t, WithLoadShed(b, codes.Unavailable), WithAdaptiveLimit(l), WithDefaultPushback(250*time.Millisecond))))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			client.EmptyCall(ctx, &testpb.Empty{})
			close(done)
		}()
		synctest.Wait()
		require.Equal(t, 1, svc.count())

		var trailer metadata.MD
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{}, grpc.Trailer(&trailer))
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Equal(t, "grpcmw: overloaded; retry in 1ms", status.Convert(err).Message())
		assert.Equal(t, []string{"1"}, trailer.Get(PushbackKey), "the limiter's hint, not the default")
		assert.Equal(t, 1, svc.count())
		assert.Equal(t, 1, b.Metrics().InFlight, "the refused call gave its bulkhead slot back")

		cancel()
		<-done
		synctest.Wait()
		svc.mu.Lock()
		svc.block = false
		svc.mu.Unlock()
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
		assert.NoError(t, err, "the permit was given back when the handler returned")
		m := l.Metrics()
		assert.Zero(t, m.InFlight)
		assert.Equal(t, uint64(2), m.Admitted)
		assert.Equal(t, uint64(1), m.Rejected)
		assert.Zero(t, b.Metrics().InFlight)
	})
}

// TestServerAdaptiveLimitStreamAndPanic: a stream holds its permit while
// its handler runs, and a panicking handler gives its permit back.
func TestServerAdaptiveLimitStreamAndPanic(t *testing.T) {
	l := newAdaptive(t, adaptive.Config{MinLimit: 1, MaxLimit: 1, InitialLimit: 1})
	s := newServer(t, WithAdaptiveLimit(l))
	info := &grpc.StreamServerInfo{FullMethod: "/m"}
	err := s.Stream(nil, &fakeStream{ctx: context.Background()}, info, func(any, grpc.ServerStream) error {
		assert.Equal(t, 1, l.Metrics().InFlight, "held while the stream runs")
		_, err := s.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/m"}, func(context.Context, any) (any, error) { return nil, nil })
		assert.Equal(t, codes.Unavailable, status.Code(err), "the limit is taken")
		return nil
	})
	require.NoError(t, err)
	assert.Zero(t, l.Metrics().InFlight)
	assert.Panics(t, func() {
		s.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/m"}, func(context.Context, any) (any, error) { panic("boom") })
	})
	assert.Zero(t, l.Metrics().InFlight, "the panicking handler gave its permit back")
	_, err = s.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/m"}, func(context.Context, any) (any, error) { return nil, nil })
	assert.NoError(t, err)
}

// fakeStream is a grpc.ServerStream with a context and nothing else.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f *fakeStream) Context() context.Context { return f.ctx }
func (f *fakeStream) SetTrailer(metadata.MD)   {}

// TestServerNotStarted checks that a call whose client has gone, or whose
// deadline has passed, never reaches its handler.
func TestServerNotStarted(t *testing.T) {
	s := newServer(t, WithRateLimit(&allower{ok: true}))
	called := false
	handler := func(ctx context.Context, req any) (any, error) { called = true; return nil, nil }

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/m"}, handler)
	assert.Equal(t, codes.Canceled, status.Code(err))

	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = s.Unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/m"}, handler)
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
	assert.False(t, called)

	_, err = s.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/m"}, handler)
	assert.NoError(t, err)
	assert.True(t, called)
}

// TestServerAdmitAllocates nothing: the admit path of every server policy,
// keyed by the peer's address.
func TestServerAdmitAllocatesNothing(t *testing.T) {
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 1e9, Burst: 1e9}})
	require.NoError(t, err)
	b, err := bulkhead.New(bulkhead.Config{})
	require.NoError(t, err)
	s := newServer(t, WithRateLimit(newLimiter(t, 1e9, 1e9)), WithKeyedRateLimit(k, nil), WithLoadShed(b, codes.Unavailable),
		WithAdaptiveLimit(newAdaptive(t, adaptive.Config{})))
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}})
	info := &grpc.UnaryServerInfo{FullMethod: "/m"}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	s.Unary(ctx, nil, info, handler) // remembers the key
	assert.Zero(t, testing.AllocsPerRun(100, func() { s.Unary(ctx, nil, info, handler) }))
}

// TestBackpressureEndToEnd checks, in virtual time over bufconn, that a
// client retries a call refused by the server's limiter exactly when the
// limiter's pushback says, and is then served.
func TestBackpressureEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{}
		cfg := retry.Config{Delay: 10 * time.Millisecond, Budget: retry.BudgetConfig{Disabled: true}}
		client := serve(t, svc, withServer(newServer(t, WithRateLimit(newLimiter(t, 2, 1)))),
			withClient(newClient(t, WithRetry(cfg), WithRetryCodes(codes.Unavailable, codes.ResourceExhausted)))...)
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		require.NoError(t, err)
		start := time.Now()
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
		require.NoError(t, err)
		assert.Equal(t, 500*time.Millisecond, time.Since(start), "the retry came when the next token did")
		assert.Equal(t, 2, svc.count())
	})
}

// TestNewServerErrors checks that every misuse of an option is an error
// from NewServer that names the option and the bad value, never a panic.
func TestNewServerErrors(t *testing.T) {
	b, err := bulkhead.New(bulkhead.Config{})
	require.NoError(t, err)
	for _, tc := range []struct {
		opt ServerOption
		err string
	}{
		{WithRateLimit(nil), "grpcmw: WithRateLimit with a nil limiter"},
		{WithRateLimit((*ratelimit.Limiter)(nil)), "grpcmw: WithRateLimit with a nil limiter"},
		{WithRateLimit((*otherLimiter)(nil)), "grpcmw: WithRateLimit with a nil limiter"}, // a shared limiter's nil, say
		{WithKeyedRateLimit(nil, nil), "grpcmw: WithKeyedRateLimit with a nil limiter"},
		{WithKeyedRateLimit((*ratelimit.Keyed)(nil), nil), "grpcmw: WithKeyedRateLimit with a nil limiter"},
		{WithLoadShed(nil, codes.Unavailable), "grpcmw: WithLoadShed with a nil bulkhead"},
		{WithLoadShed(b, codes.Internal), "grpcmw: WithLoadShed code Internal is neither Unavailable nor ResourceExhausted"},
		{WithLoadShed(b, codes.Code(42)), "grpcmw: WithLoadShed code Code(42) is neither Unavailable nor ResourceExhausted"},
		{WithDefaultPushback(-time.Second), "grpcmw: WithDefaultPushback(-1s): negative"},
		{WithAdaptiveLimit(nil), "grpcmw: WithAdaptiveLimit with a nil limiter"},
		{nil, "grpcmw: NewServer: opts[0] is nil"},
	} {
		var s *Server
		var err error
		require.NotPanics(t, func() { s, err = NewServer(tc.opt) }, tc.err)
		assert.Nil(t, s)
		assert.EqualError(t, err, tc.err)
	}
}

// otherLimiter is a limiter of another package (redisrate's, say).
type otherLimiter struct{}

func (*otherLimiter) Allow() bool { return true }
