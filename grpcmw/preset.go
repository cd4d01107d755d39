package grpcmw

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/preset"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
)

// A Preset is the standard pipeline of package preset for a gRPC client:
// its interceptors, [Preset.Unary] and [Preset.Stream], run each call
// through
//
//  1. the rate limiter of preset.Config.RateLimit, if any: the call waits
//     for a token within its total timeout, or fails at once with
//     RESOURCE_EXHAUSTED (an error matching ratelimit.ErrLimited, with the
//     wait as its retry-after hint) if the token would come after its
//     deadline;
//  2. the total timeout, preset.Config.Timeout: the call's context gets
//     that deadline (the caller's, if earlier, rules), which bounds the
//     limiter's wait and every attempt and wait between attempts. For a
//     stream the deadline covers the stream's whole life, every message
//     sent and received: a stream that must outlive it needs a preset of
//     its own with a longer Timeout. Its context is released when the
//     stream ends (RecvMsg returns an error, or the one response of a
//     client-streaming call has arrived), or when the caller's context ends;
//  3. a [Client] with the retry (WithRetry), a breaker per method
//     (WithBreakers with BreakerPerMethod) and the attempt timeout
//     (WithAttemptTimeout) of the config, as Client documents them.
//
// A Preset is safe for concurrent use by multiple goroutines.
type Preset struct {
	limiter  *ratelimit.Limiter // nil: none
	timeout  time.Duration
	breakers *breaker.Group // nil: none
	client   *Client
}

// NewPreset returns the Preset of cfg (see preset.Config.Validate for the
// errors it returns), its Client configured by the preset's options and
// then by opts, which come after them and so replace them (WithRetry
// replaces the retry of cfg, WithBreakers its breakers). WithRegistry
// registers the retry and the breaker group; register the limiter yourself
// ([Preset.Limiter]) if you want it named.
func NewPreset(cfg preset.Config, opts ...ClientOption) (*Preset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("grpcmw: NewPreset: %w", err)
	}
	c := cfg.WithDefaults()
	p := &Preset{timeout: c.Timeout}
	var err error
	if c.RateLimit != nil {
		if p.limiter, err = ratelimit.New(*c.RateLimit); err != nil {
			return nil, fmt.Errorf("grpcmw: NewPreset: preset: rateLimit: %w", err) // not reached: validated
		}
	}
	popts := []ClientOption{WithRetry(c.Retry), WithAttemptTimeout(c.AttemptTimeout)}
	if !c.DisableBreaker {
		if p.breakers, err = breaker.NewGroup(c.Breaker, 0); err != nil {
			return nil, fmt.Errorf("grpcmw: NewPreset: preset: breaker: %w", err) // not reached: validated
		}
		popts = append(popts, WithBreakers(p.breakers, BreakerPerMethod))
	}
	if p.client, err = NewClient(append(popts, opts...)...); err != nil {
		return nil, err
	}
	return p, nil
}

// DialOptions returns the dial options that install p's interceptors,
// and turn gRPC's own retries off (grpc.WithDisableRetry), which would
// multiply with p's:
//
//	conn, err := grpc.NewClient(target, append(p.DialOptions(), creds)...)
func (p *Preset) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(p.Unary),
		grpc.WithChainStreamInterceptor(p.Stream),
		grpc.WithDisableRetry(),
	}
}

// Unary is the unary client interceptor (a grpc.UnaryClientInterceptor).
func (p *Preset) Unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if err := p.wait(ctx); err != nil {
		return err
	}
	return p.client.Unary(ctx, method, req, reply, cc, invoker, opts...)
}

// Stream is the streaming client interceptor (a
// grpc.StreamClientInterceptor).
func (p *Preset) Stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	if err := p.wait(ctx); err != nil {
		cancel()
		return nil, err
	}
	s, err := p.client.Stream(ctx, desc, cc, method, streamer, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &timedStream{ClientStream: s, cancel: cancel, serverStreams: desc.ServerStreams}, nil
}

// wait waits for the limiter's token, if there is a limiter, and returns
// the error of a call that cannot have one as a gRPC status.
func (p *Preset) wait(ctx context.Context) error {
	if p.limiter == nil {
		return nil
	}
	err := p.limiter.Wait(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return status.FromContextError(err).Err()
	}
	msg := "grpcmw: rate limited locally"
	if d, ok := seawall.RetryAfter(err); ok {
		msg += ": a token is free in " + waitText(d) + ", after the call's deadline"
	}
	return &limitedError{err: err, status: status.New(codes.ResourceExhausted, msg)}
}

// limitedError is a call refused by the preset's rate limiter:
// RESOURCE_EXHAUSTED, matching ratelimit.ErrLimited, with its hint.
type limitedError struct {
	err    error
	status *status.Status
}

func (e *limitedError) Error() string              { return e.status.Message() }
func (e *limitedError) Unwrap() error              { return e.err }
func (e *limitedError) GRPCStatus() *status.Status { return e.status }

// timedStream releases the total timeout of a stream when it ends.
type timedStream struct {
	grpc.ClientStream
	cancel        context.CancelFunc
	serverStreams bool
}

// RecvMsg receives a message; the stream has ended when it returns an
// error, or, for a call with one response, a message.
func (s *timedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil || !s.serverStreams {
		s.cancel()
	}
	return err
}

// Limiter returns the rate limiter of p, nil if it has none: to register
// it (as name+".ratelimit", say), read its metrics, or change its rate.
func (p *Preset) Limiter() *ratelimit.Limiter { return p.limiter }

// Breakers returns the breaker group built from preset.Config.Breaker,
// one breaker per method; nil if the breakers are disabled. If a
// WithBreakers option replaced it, the group is unused.
func (p *Preset) Breakers() *breaker.Group { return p.breakers }

// Client returns the Client of p's retries, breakers and attempt timeout.
func (p *Preset) Client() *Client { return p.client }

// Metrics returns a snapshot of the retry counters of p; see
// [Client.Metrics].
func (p *Preset) Metrics() retry.Metrics { return p.client.Metrics() }
