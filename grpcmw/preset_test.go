package grpcmw

import (
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/preset"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

func newPreset(t *testing.T, cfg preset.Config, opts ...ClientOption) *Preset {
	t.Helper()
	p, err := NewPreset(cfg, opts...)
	require.NoError(t, err)
	return p
}

// fast is a retry that fits in short total timeouts: 10ms between
// attempts, no jitter, no budget.
var fast = retry.Config{MaxAttempts: 10, Delay: 10 * time.Millisecond, Multiplier: 1, Jitter: retry.NoJitter,
	Budget: retry.BudgetConfig{Disabled: true}}

// TestPresetLimiterWaitsBeforeAttempts: calls beyond the rate wait for
// their token before anything is sent.
func TestPresetLimiterWaitsBeforeAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{}
		p := newPreset(t, preset.Config{RateLimit: &ratelimit.Config{Rate: 1}, Breaker: breaker.Config{MinimumCalls: 30}})
		client := serve(t, svc, nil, p.DialOptions()...)
		start := time.Now()
		for range 3 {
			_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
			require.NoError(t, err)
		}
		assert.Equal(t, 2*time.Second, time.Since(start), "the second and third calls waited a second each")
		assert.Equal(t, 3, svc.count())
		assert.Equal(t, uint64(3), p.Limiter().Metrics().Allowed)
	})
}

// TestPresetLimiterRefusesPastDeadline: a call whose token would come
// after its total timeout fails at once with RESOURCE_EXHAUSTED, before
// any attempt.
func TestPresetLimiterRefusesPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{}
		p := newPreset(t, preset.Config{RateLimit: &ratelimit.Config{Rate: 0.5}, Timeout: time.Second,
			AttemptTimeout: 500 * time.Millisecond, Retry: fast, Breaker: breaker.Config{MinimumCalls: 10}})
		client := serve(t, svc, nil, p.DialOptions()...)
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		require.NoError(t, err)
		start := time.Now()
		_, err = client.EmptyCall(t.Context(), &testpb.Empty{})
		require.Error(t, err)
		assert.Zero(t, time.Since(start), "refused at once")
		assert.Equal(t, codes.ResourceExhausted, status.Code(err))
		assert.Contains(t, status.Convert(err).Message(), "rate limited locally: a token is free in 2s")
		assert.ErrorIs(t, err, ratelimit.ErrLimited)
		hint, ok := seawall.RetryAfter(err)
		assert.True(t, ok)
		assert.Equal(t, 2*time.Second, hint)
		assert.Equal(t, 1, svc.count(), "nothing is sent")

		_, err = client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "streams take tokens too")
	})
}

// TestPresetTotalTimeoutBoundsRetries: attempts that time out are retried
// until the total timeout ends the call.
func TestPresetTotalTimeoutBoundsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{block: true}
		p := newPreset(t, preset.Config{Timeout: time.Second, AttemptTimeout: 300 * time.Millisecond, Retry: fast})
		client := serve(t, svc, nil, p.DialOptions()...)
		start := time.Now()
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		assert.Equal(t, time.Second, time.Since(start), "the call ends at its total timeout")
		assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
		synctest.Wait()
		assert.Equal(t, 4, svc.count(), "attempts at 0, 310ms, 620ms, 930ms")
	})
}

// TestPresetBreakerInsideRetry: the breaker of the method judges every
// attempt, so retries trip it; once open, it fails calls before they are
// sent.
func TestPresetBreakerInsideRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{fail: always(codes.Unavailable, "")}
		p := newPreset(t, preset.Config{Retry: fast, Breaker: breaker.Config{ConsecutiveFailures: 2}})
		client := serve(t, svc, nil, p.DialOptions()...)
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.ErrorIs(t, err, breaker.ErrOpen, "the third attempt met the open breaker")
		assert.Equal(t, 2, svc.count())
		b, ok := p.Breakers().Lookup("/grpc.testing.TestService/EmptyCall")
		require.True(t, ok, "one breaker per method")
		assert.Equal(t, breaker.Open, b.State())

		_, err = client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Equal(t, 4, svc.count(), "another method has a breaker of its own")
	})
}

// TestPresetStreamDeadline: a stream's total timeout covers its whole
// life, not only its opening.
func TestPresetStreamDeadline(t *testing.T) {
	for _, tt := range []struct {
		timeout time.Duration
		want    []codes.Code // of each Recv; Unknown for io.EOF
		end     time.Duration
	}{
		{time.Second, []codes.Code{codes.OK, codes.OK, codes.OK, codes.Unknown}, 800 * time.Millisecond},
		{600 * time.Millisecond, []codes.Code{codes.OK, codes.OK, codes.DeadlineExceeded}, 600 * time.Millisecond},
	} {
		t.Run(tt.timeout.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				svc := &service{pause: 400 * time.Millisecond}
				p := newPreset(t, preset.Config{Timeout: tt.timeout, AttemptTimeout: 300 * time.Millisecond, Retry: fast})
				client := serve(t, svc, nil, p.DialOptions()...)
				start := time.Now()
				stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{})
				require.NoError(t, err)
				var got []codes.Code
				for {
					_, err := stream.Recv()
					if err == io.EOF {
						got = append(got, codes.Unknown)
						break
					}
					got = append(got, status.Code(err))
					if err != nil {
						break
					}
				}
				assert.Equal(t, tt.want, got, "messages at 0, 400ms and 800ms")
				assert.Equal(t, tt.end, time.Since(start))
				bubble.Sleep(time.Second) // lets the server's handler end its pauses
			})
		})
	}
}

// TestPresetClientStream: a client-streaming call, whose one response
// ends it, works through the preset.
func TestPresetClientStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPreset(t, preset.Config{})
		client := serve(t, &service{}, nil, p.DialOptions()...)
		stream, err := client.StreamingInputCall(t.Context())
		require.NoError(t, err)
		require.NoError(t, stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("abc")}}))
		resp, err := stream.CloseAndRecv()
		require.NoError(t, err)
		assert.Equal(t, int32(3), resp.GetAggregatedPayloadSize())
	})
}

// TestPresetOptionsReplacePreset: an option after the preset's replaces
// it.
func TestPresetOptionsReplacePreset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &service{fail: always(codes.Unavailable, "")}
		p := newPreset(t, preset.Config{}, WithRetry(retry.Config{MaxAttempts: 1}))
		client := serve(t, svc, nil, p.DialOptions()...)
		_, err := client.EmptyCall(t.Context(), &testpb.Empty{})
		assert.Equal(t, codes.Unavailable, status.Code(err))
		assert.Equal(t, 1, svc.count(), "no retry")
	})
}

func TestNewPresetErrors(t *testing.T) {
	cfg := preset.Config{AttemptTimeout: 40 * time.Second}
	_, err := NewPreset(cfg)
	require.Error(t, err)
	assert.Equal(t, "grpcmw: NewPreset: "+cfg.Validate().Error(), err.Error(), "the preset's error comes through")
	assert.Contains(t, err.Error(), "grpcmw: NewPreset: preset: attemptTimeout 40s exceeds timeout 30s (default)")

	_, err = NewPreset(preset.Config{RateLimit: &ratelimit.Config{Rate: 1}})
	assert.ErrorContains(t, err, "preset: breaker.minimumCalls 100 (default) can never be reached")

	_, err = NewPreset(preset.Config{}, WithAttemptTimeout(-1))
	assert.ErrorContains(t, err, "grpcmw: WithAttemptTimeout(-1ns): negative")
}
