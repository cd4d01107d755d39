package grpcmw

import (
	"context"
	"io"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/retry"
)

// step is what hedgeService does with the call that reaches it n-th:
// answer after delay (or, cancelled before, with CANCELED), with err if
// not nil and a pushback trailer if not "".
type step struct {
	delay     time.Duration
	pushback  string
	err       error
	ignoreCtx bool // answer after delay even if cancelled
}

// hedgeService answers UnaryCall as its script says, with "attempt n" as
// the reply's Hostname and as the x-attempt header and trailer, and
// records when each call began (since t0) and which were cancelled.
// EmptyCall fails with INTERNAL, to trip breakers.
type hedgeService struct {
	testpb.UnimplementedTestServiceServer
	script func(n int) step // nil: every call succeeds at once

	mu        sync.Mutex
	t0        time.Time
	n         int
	starts    []time.Duration
	cancelled []int
}

func (s *hedgeService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.starts = append(s.starts, time.Since(s.t0))
	var st step
	if s.script != nil {
		st = s.script(n)
	}
	s.mu.Unlock()
	name := "attempt " + strconv.Itoa(n)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-attempt", name))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-attempt", name))
	if st.pushback != "" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(PushbackKey, st.pushback))
	}
	if st.delay > 0 {
		if st.ignoreCtx {
			bubble.Sleep(st.delay)
		} else {
			t := time.NewTimer(st.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				s.mu.Lock()
				s.cancelled = append(s.cancelled, n)
				s.mu.Unlock()
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
	}
	if st.err != nil {
		return nil, st.err
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload(), Hostname: name}, nil
}

func (s *hedgeService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return nil, status.Error(codes.Internal, "broken")
}

func (s *hedgeService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	_, err := s.UnaryCall(stream.Context(), &testpb.SimpleRequest{Payload: req.GetPayload()})
	if err != nil {
		return err
	}
	return stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()})
}

// begin starts the clock of the calls' start times.
func (s *hedgeService) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t0, s.n, s.starts, s.cancelled = time.Now(), 0, nil, nil
}

func (s *hedgeService) record() (starts []time.Duration, cancelled []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts, s.cancelled
}

// slowFirst is a script: the first call answers after 1s, the others after
// 10ms.
func slowFirst(n int) step {
	if n == 1 {
		return step{delay: time.Second}
	}
	return step{delay: 10 * time.Millisecond}
}

// fixed is a hedge.Config with a fixed delay d.
func fixed(d time.Duration, maxAttempts int) hedge.Config {
	return hedge.Config{Delay: d, MaxAttempts: maxAttempts}
}

const ms = time.Millisecond

var unaryReq = &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("req")}}

// TestHedgeTailLatency: the first attempt is slow, the hedge fast: the call
// answers at the hedge delay plus the hedge's own time, with the hedge's
// reply, header, trailer and peer in the caller's, and the slow attempt is
// cancelled at the server.
func TestHedgeTailLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &hedgeService{script: slowFirst}
		c := newClient(t, WithHedge(fixed(50*ms, 2)))
		client := serve(t, svc, nil, withClient(c)...)
		var header, trailer metadata.MD
		var p peer.Peer
		svc.begin()
		resp, err := client.UnaryCall(t.Context(), unaryReq, grpc.Header(&header), grpc.Trailer(&trailer), grpc.Peer(&p))
		require.NoError(t, err)
		assert.Equal(t, 60*ms, time.Since(svc.t0), "the hedge's delay and its 10ms")
		assert.Equal(t, "attempt 2", resp.GetHostname(), "the hedge's reply")
		assert.Equal(t, []byte("req"), resp.GetPayload().GetBody())
		assert.Equal(t, []string{"attempt 2"}, header.Get("x-attempt"), "the hedge's header")
		assert.Equal(t, []string{"attempt 2"}, trailer.Get("x-attempt"), "the hedge's trailer")
		assert.NotNil(t, p.Addr, "the hedge's peer")
		synctest.Wait()
		starts, cancelled := svc.record()
		assert.Equal(t, []time.Duration{0, 50 * ms}, starts)
		assert.Equal(t, []int{1}, cancelled, "the slow attempt is cancelled")
		assert.Equal(t, hedge.Metrics{Calls: 1, Hedges: 1, HedgeWins: 1, Delay: 50 * ms}, c.HedgeMetrics())

		// A fast call starts no hedge, and keeps its own reply.
		svc.mu.Lock()
		svc.script = nil
		svc.mu.Unlock()
		svc.begin()
		resp, err = client.UnaryCall(t.Context(), unaryReq, grpc.Header(&header))
		require.NoError(t, err)
		assert.Equal(t, "attempt 1", resp.GetHostname())
		assert.Equal(t, []string{"attempt 1"}, header.Get("x-attempt"))
		assert.Equal(t, uint64(1), c.HedgeMetrics().Hedges)
	})
}

// TestHedgeOutcomes: how an attempt's answer decides the hedging (gRFC A6):
// a non-fatal code starts the next hedge at once, or after the pushback; a
// do-not-retry pushback starts no more; a fatal code ends the call, the
// other attempt cancelled; when every attempt fails, the first one's error.
func TestHedgeOutcomes(t *testing.T) {
	unavailable := func(msg string) error { return status.Error(codes.Unavailable, msg) }
	for _, tc := range []struct {
		name      string
		opts      []ClientOption
		script    func(n int) step
		starts    []time.Duration
		took      time.Duration
		code      codes.Code
		msg       string // of the error, or the winner's Hostname
		cancelled []int
	}{
		{
			name:   "non-fatal: the hedge at once",
			opts:   []ClientOption{WithHedge(fixed(time.Second, 2))},
			script: func(n int) step { return map[int]step{1: {err: unavailable("down")}}[n] },
			starts: []time.Duration{0, 0}, took: 0, code: codes.OK, msg: "attempt 2",
		},
		{
			name:   "pushback: the hedge after it",
			opts:   []ClientOption{WithHedge(fixed(time.Second, 2))},
			script: func(n int) step { return map[int]step{1: {err: unavailable("busy"), pushback: "30"}}[n] },
			starts: []time.Duration{0, 30 * ms}, took: 30 * ms, code: codes.OK, msg: "attempt 2",
		},
		{
			name: "negative pushback: no more hedges, the running attempt goes on",
			opts: []ClientOption{WithHedge(fixed(100*ms, 3))},
			script: func(n int) step {
				return map[int]step{1: {delay: time.Second}, 2: {err: unavailable("go away"), pushback: "-1"}}[n]
			},
			starts: []time.Duration{0, 100 * ms}, took: time.Second, code: codes.OK, msg: "attempt 1",
		},
		{
			name: "malformed pushback: no more hedges",
			opts: []ClientOption{WithHedge(fixed(100*ms, 3))},
			script: func(n int) step {
				return map[int]step{1: {delay: time.Second}, 2: {err: unavailable("go away"), pushback: "soon"}}[n]
			},
			starts: []time.Duration{0, 100 * ms}, took: time.Second, code: codes.OK, msg: "attempt 1",
		},
		{
			name: "fatal: the call ends, the other attempt cancelled",
			opts: []ClientOption{WithHedge(fixed(50*ms, 2))},
			script: func(n int) step {
				return map[int]step{1: {delay: time.Second}, 2: {err: status.Error(codes.InvalidArgument, "bad")}}[n]
			},
			starts: []time.Duration{0, 50 * ms}, took: 50 * ms, code: codes.InvalidArgument, msg: "bad", cancelled: []int{1},
		},
		{
			name:   "no hedge codes: UNAVAILABLE is fatal",
			opts:   []ClientOption{WithHedge(fixed(time.Second, 2)), WithHedgeCodes()},
			script: func(n int) step { return step{err: unavailable("down")} },
			starts: []time.Duration{0}, took: 0, code: codes.Unavailable, msg: "down",
		},
		{
			name:   "hedge codes replace UNAVAILABLE",
			opts:   []ClientOption{WithHedge(fixed(time.Second, 2)), WithHedgeCodes(codes.Aborted)},
			script: func(n int) step { return map[int]step{1: {err: status.Error(codes.Aborted, "conflict")}}[n] },
			starts: []time.Duration{0, 0}, took: 0, code: codes.OK, msg: "attempt 2",
		},
		{
			name: "the config's NonFatal replaces the codes",
			opts: []ClientOption{WithHedge(hedge.Config{Delay: time.Second, NonFatal: func(err error) bool {
				return status.Code(err) == codes.Aborted
			}})},
			script: func(n int) step { return step{err: unavailable("down")} },
			starts: []time.Duration{0}, took: 0, code: codes.Unavailable, msg: "down",
		},
		{
			name: "every attempt fails: the first one's error",
			opts: []ClientOption{WithHedge(fixed(50*ms, 3))},
			script: func(n int) step {
				return map[int]step{
					1: {delay: 100 * ms, err: unavailable("first")},
					2: {delay: 10 * ms, err: unavailable("second")},
					3: {err: unavailable("third")},
				}[n]
			},
			starts: []time.Duration{0, 50 * ms, 60 * ms}, took: 100 * ms, code: codes.Unavailable, msg: "first",
		},
		{
			name: "an attempt timeout is non-fatal",
			opts: []ClientOption{WithHedge(fixed(time.Second, 2)), WithAttemptTimeout(100 * ms)},
			script: func(n int) step {
				return map[int]step{1: {delay: time.Hour}}[n]
			},
			starts: []time.Duration{0, 100 * ms}, took: 100 * ms, code: codes.OK, msg: "attempt 2", cancelled: []int{1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				svc := &hedgeService{script: tc.script}
				client := serve(t, svc, nil, withClient(newClient(t, tc.opts...))...)
				svc.begin()
				resp, err := client.UnaryCall(t.Context(), unaryReq)
				assert.Equal(t, tc.took, time.Since(svc.t0))
				assert.Equal(t, tc.code, status.Code(err), "%v", err)
				if err != nil {
					assert.Equal(t, tc.msg, status.Convert(err).Message())
				} else {
					assert.Equal(t, tc.msg, resp.GetHostname())
				}
				synctest.Wait()
				starts, cancelled := svc.record()
				assert.Equal(t, tc.starts, starts)
				assert.Equal(t, tc.cancelled, cancelled)
			})
		})
	}
}

// TestHedgeBudget: a hedge spends from the retry's budget; an empty budget
// starts no hedge and cancels nothing; and a call with retries and hedges
// counts its request once.
func TestHedgeBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := noDelay
		cfg.Budget = retry.BudgetConfig{Ratio: 0.1, NoFloor: true} // no retry for one request
		c := newClient(t, WithRetry(cfg), WithHedge(fixed(50*ms, 2)))
		svc := &hedgeService{script: slowFirst}
		client := serve(t, svc, nil, withClient(c)...)
		svc.begin()
		resp, err := client.UnaryCall(t.Context(), unaryReq)
		require.NoError(t, err)
		assert.Equal(t, "attempt 1", resp.GetHostname(), "the first attempt, not cancelled")
		assert.Equal(t, time.Second, time.Since(svc.t0))
		starts, cancelled := svc.record()
		assert.Equal(t, []time.Duration{0}, starts, "no hedge")
		assert.Empty(t, cancelled)
		assert.Equal(t, uint64(1), c.HedgeMetrics().BudgetRefusals)
		bm := c.retry.Budget().Metrics()
		assert.Equal(t, uint64(1), bm.Requests)
		assert.Equal(t, uint64(1), bm.Exhausted)
	})

	synctest.Test(t, func(t *testing.T) {
		// Retries and hedges: the first attempt of the retry is a hedged
		// call whose two attempts fail; the retry's is one whose first
		// attempt succeeds.
		cfg := noDelay
		cfg.Budget = retry.BudgetConfig{Mode: retry.TokensMode, MaxTokens: 100}
		c := newClient(t, WithRetry(cfg), WithHedge(fixed(50*ms, 2)))
		svc := &hedgeService{script: func(n int) step {
			if n <= 2 {
				return step{err: status.Error(codes.Unavailable, "down")}
			}
			return step{}
		}}
		client := serve(t, svc, nil, withClient(c)...)
		svc.begin()
		resp, err := client.UnaryCall(t.Context(), unaryReq)
		require.NoError(t, err)
		assert.Equal(t, "attempt 3", resp.GetHostname())
		bm := c.retry.Budget().Metrics()
		assert.Equal(t, uint64(1), bm.Requests, "one call, one request, however many hedges and retries")
		assert.Equal(t, uint64(2), bm.Retries, "the hedge and the retry")
		assert.Equal(t, hedge.Metrics{Calls: 2, Hedges: 1, Delay: 50 * ms}, c.HedgeMetrics(), "one hedged call per attempt of the retry")
	})
}

// TestHedgeOwnBudget: without WithRetry, hedges spend from the config's
// budget, which then counts each call's request.
func TestHedgeOwnBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.1, NoFloor: true})
		require.NoError(t, err)
		cfg := fixed(50*ms, 2)
		cfg.Budget = b
		c := newClient(t, WithHedge(cfg))
		svc := &hedgeService{script: slowFirst}
		client := serve(t, svc, nil, withClient(c)...)
		svc.begin()
		_, err = client.UnaryCall(t.Context(), unaryReq)
		require.NoError(t, err)
		assert.Equal(t, time.Second, time.Since(svc.t0), "no hedge: 0.1 × 1 request")
		assert.Equal(t, retry.BudgetMetrics{Requests: 1, Exhausted: 1}, b.Metrics())
	})
}

// TestHedgeBreaker: an open breaker fails the call fast, with no hedge; a
// breaker that opens, or is half-open, while the first attempt runs
// refuses the hedge, and the first attempt goes on.
func TestHedgeBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := breaker.NewGroup(breaker.Config{ConsecutiveFailures: 1, OpenDuration: time.Minute}, 0)
		require.NoError(t, err)
		c := newClient(t, WithHedge(fixed(50*ms, 2)), WithBreakers(g, BreakerPerTarget))
		svc := &hedgeService{script: slowFirst}
		client := serve(t, svc, nil, withClient(c)...)

		// Open mid-call: EmptyCall's INTERNAL trips the target's breaker
		// at 10ms.
		svc.begin()
		done := make(chan error)
		go func() {
			resp, err := client.UnaryCall(t.Context(), unaryReq)
			if err == nil {
				assert.Equal(t, "attempt 1", resp.GetHostname())
			}
			done <- err
		}()
		bubble.Sleep(10 * ms)
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
		require.Equal(t, codes.Internal, status.Code(err))
		require.Equal(t, breaker.Open, g.Get("passthrough:///bufnet").State())
		require.NoError(t, <-done, "the first attempt goes on")
		assert.Equal(t, time.Second, time.Since(svc.t0))
		starts, cancelled := svc.record()
		assert.Equal(t, []time.Duration{0}, starts, "the gate refused the hedge")
		assert.Empty(t, cancelled)
		assert.Equal(t, hedge.Metrics{Calls: 2, GateRefusals: 1, Delay: 50 * ms}, c.HedgeMetrics(), "UnaryCall's and EmptyCall's")

		// Open: fails fast, nothing sent.
		svc.begin()
		_, err = client.UnaryCall(t.Context(), unaryReq)
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Zero(t, time.Since(svc.t0))
		starts, _ = svc.record()
		assert.Empty(t, starts)
		assert.Equal(t, hedge.Metrics{Calls: 3, GateRefusals: 1, Delay: 50 * ms}, c.HedgeMetrics(), "no hedge")

		// Half-open: the probe is not hedged.
		bubble.Sleep(time.Minute)
		svc.begin()
		_, err = client.UnaryCall(t.Context(), unaryReq)
		require.NoError(t, err)
		assert.Equal(t, time.Second, time.Since(svc.t0))
		starts, _ = svc.record()
		assert.Equal(t, []time.Duration{0}, starts)
		assert.Equal(t, uint64(2), c.HedgeMetrics().GateRefusals)
		assert.Equal(t, breaker.Closed, g.Get("passthrough:///bufnet").State())
	})
}

// TestHedgeReplyNotShared: attempts that answer at the same moment each
// receive into a message of their own; the caller's reply is the winner's,
// whole, and never a loser's (run with -race).
func TestHedgeReplyNotShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &hedgeService{script: func(n int) step {
			if n%2 == 1 {
				return step{delay: 60 * ms, ignoreCtx: true}
			}
			return step{delay: 10 * ms, ignoreCtx: true} // answers with the first
		}}
		c := newClient(t, WithHedge(fixed(50*ms, 2)))
		client := serve(t, svc, nil, withClient(c)...)
		for i := range 20 {
			before := c.HedgeMetrics().HedgeWins
			var trailer metadata.MD
			resp, err := client.UnaryCall(t.Context(), unaryReq, grpc.Trailer(&trailer))
			require.NoError(t, err)
			want := "attempt " + strconv.Itoa(2*i+1)
			if c.HedgeMetrics().HedgeWins > before {
				want = "attempt " + strconv.Itoa(2*i+2)
			}
			assert.Equal(t, want, resp.GetHostname(), "call %d", i)
			assert.Equal(t, []string{want}, trailer.Get("x-attempt"), "call %d: the winner's trailer", i)
			synctest.Wait() // the loser has answered
			assert.Equal(t, want, resp.GetHostname(), "call %d: the loser's reply never lands in the caller's", i)
		}
	})
}

// TestHedgeBeforeFirst: with a delay so short that a hedge may begin
// before the attempt on the caller's goroutine, whichever begins first
// writes the caller's reply: the reply is whole, whoever wins. And once
// the call has returned, no attempt touches its request: the caller may
// change it at once (real time, -race).
func TestHedgeBeforeFirst(t *testing.T) {
	c := newClient(t, WithHedge(hedge.Config{Delay: time.Nanosecond, MaxAttempts: 3}))
	client := serve(t, &hedgeService{}, nil, withClient(c)...)
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{}}
	for i := range 50 {
		body := []byte("call " + strconv.Itoa(i))
		req.Payload.Body = body // the request of the call before, reused
		var header metadata.MD
		resp, err := client.UnaryCall(t.Context(), req, grpc.Header(&header))
		require.NoError(t, err)
		assert.Equal(t, body, resp.GetPayload().GetBody())
		assert.Equal(t, []string{resp.GetHostname()}, header.Get("x-attempt"), "the header is the winner's")
	}
	assert.NotZero(t, c.HedgeMetrics().Hedges)
}

// TestHedgeNoLeak: the attempts that lose end, their goroutines with them.
func TestHedgeNoLeak(t *testing.T) {
	svc := &hedgeService{script: func(n int) step {
		if n%2 == 1 {
			return step{delay: time.Hour} // until cancelled
		}
		return step{}
	}}
	client := serve(t, svc, nil, withClient(newClient(t, WithHedge(fixed(time.Millisecond, 2))))...)
	_, err := client.UnaryCall(t.Context(), unaryReq) // the connection's goroutines start
	require.NoError(t, err)
	opt := goleak.IgnoreCurrent()
	for range 10 {
		_, err := client.UnaryCall(t.Context(), unaryReq)
		require.NoError(t, err)
	}
	goleak.VerifyNone(t, opt)
	_, cancelled := svc.record()
	assert.GreaterOrEqual(t, len(cancelled), 10, "every slow attempt cancelled")
}

// TestHedgeWithRetry: each attempt of the retry is a hedged call; a retry
// follows a hedged call whose attempts all failed.
func TestHedgeWithRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClient(t, WithRetry(noDelay), WithHedge(fixed(50*ms, 2)), WithAttemptTimeout(200*ms))
		svc := &hedgeService{script: func(n int) step {
			return map[int]step{1: {delay: time.Hour}, 2: {delay: time.Hour}, 3: {delay: time.Hour}}[n]
		}}
		client := serve(t, svc, nil, withClient(c)...)
		svc.begin()
		resp, err := client.UnaryCall(t.Context(), unaryReq)
		require.NoError(t, err)
		assert.Equal(t, "attempt 4", resp.GetHostname())
		synctest.Wait()
		starts, cancelled := svc.record()
		// Attempt 1 times out at 200ms, attempt 2 (50ms) at 250ms; the
		// retry at 250ms: attempt 3, hedged at 300ms by attempt 4.
		assert.Equal(t, []time.Duration{0, 50 * ms, 250 * ms, 300 * ms}, starts)
		assert.Equal(t, []int{1, 2, 3}, cancelled)
		assert.Equal(t, retry.Metrics{Retries: 1}, c.Metrics())
		assert.Equal(t, hedge.Metrics{Calls: 2, Hedges: 2, HedgeWins: 1, Delay: 50 * ms}, c.HedgeMetrics())
	})
}

// TestHedgeNotApplied: streams, calls with CallNoHedge, and replies that
// are not protocol buffers are not hedged.
func TestHedgeNotApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClient(t, WithHedge(fixed(50*ms, 2)))
		svc := &hedgeService{script: slowFirst}
		client := serve(t, svc, nil, withClient(c)...)
		svc.begin()
		resp, err := client.UnaryCall(t.Context(), unaryReq, CallNoHedge())
		require.NoError(t, err)
		assert.Equal(t, "attempt 1", resp.GetHostname())
		assert.Equal(t, time.Second, time.Since(svc.t0))

		svc.begin()
		stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
		require.NoError(t, err)
		_, err = stream.Recv()
		require.NoError(t, err)
		_, err = stream.Recv()
		require.Equal(t, io.EOF, err)
		assert.Equal(t, time.Second, time.Since(svc.t0))
		starts, _ := svc.record()
		assert.Len(t, starts, 1)
		assert.Zero(t, c.HedgeMetrics().Hedges)
	})
	c := newClient(t, WithHedge(fixed(50*ms, 2)))
	u := unaryCall{c: c, reply: new([]byte)} // a codec of one's own
	assert.False(t, u.hedging(&call{}))
	u.reply = &testpb.SimpleResponse{}
	assert.True(t, u.hedging(&call{}))
}

// TestHedgeObserved: a hedged call is one attempt for the observer.
func TestHedgeObserved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		client := serve(t, &hedgeService{script: slowFirst}, nil, withClient(newClient(t, WithHedge(fixed(50*ms, 2)), WithAttemptObserver(rec)))...)
		_, err := client.UnaryCall(t.Context(), unaryReq)
		require.NoError(t, err)
		got, _ := rec.take(t, nil)
		assert.Equal(t, []seawall.Attempt{{Protocol: seawall.ProtocolGRPC, Number: 1, Outcome: seawall.OutcomeSuccess, Last: true}}, got)
	})
}

func TestHedgeOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt ClientOption
		err string
	}{
		{WithHedge(hedge.Config{MaxAttempts: 11}), "grpcmw: WithHedge: hedge: MaxAttempts 11 out of range [1,10]"},
		{WithHedge(hedge.Config{Delay: -1}), "grpcmw: WithHedge: hedge: Delay -1ns is negative"},
		{WithHedgeCodes(codes.Code(99)), "grpcmw: WithHedgeCodes: code 99 does not exist"},
	} {
		c, err := NewClient(WithRetry(noDelay), tc.opt)
		assert.Nil(t, c)
		assert.EqualError(t, err, tc.err)
	}
}
