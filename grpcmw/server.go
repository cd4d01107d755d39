package grpcmw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/internal/nilness"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
)

// A Server holds the server interceptors, [Server.Unary] and
// [Server.Stream], and the policies they apply before a call's handler
// runs, in this order:
//
//   - A call whose client has gone or whose deadline has passed (gRPC
//     propagates deadlines itself, in grpc-timeout) is not started: it ends
//     with CANCELED or DEADLINE_EXCEEDED.
//   - Fault injection (WithFaultInjection): while its fault.Injector is
//     enabled, a call may be delayed, or end with a chosen code.
//   - A rate limit (WithRateLimit) and a per-client rate limit
//     (WithKeyedRateLimit): a refused call ends with RESOURCE_EXHAUSTED.
//   - Load shedding with a bulkhead (WithLoadShed): a call that finds no
//     slot (after the bulkhead's bounded wait) ends with UNAVAILABLE, or
//     RESOURCE_EXHAUSTED if so configured; the slot is held until the handler
//     returns (for a stream, until the stream ends).
//   - Load shedding with an adaptive concurrency limit (WithAdaptiveLimit):
//     a call over the limit ends with UNAVAILABLE and the limiter's
//     pushback; the permit is held as a bulkhead's slot is.
//
// Every rejection carries a PushbackKey trailer when a wait is known: the
// limiter's exact time until its next token, or the one set with
// WithDefaultPushback for rejections that have none (a full bulkhead).
//
//	s, err := grpcmw.NewServer(grpcmw.WithRateLimit(limiter), grpcmw.WithLoadShed(bh, codes.Unavailable))
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(s.Unary), grpc.ChainStreamInterceptor(s.Stream))
//
// The admit path (a call let through) allocates nothing.
type Server struct {
	limiter   ratelimit.Allower
	tryer     interface{ Try(int) error }
	keyed     ratelimit.KeyedLimiter
	key       KeyFunc
	bulkhead  *bulkhead.Bulkhead
	shedCode  codes.Code
	adaptive  *adaptive.Limiter
	pushback  time.Duration
	fault     *fault.Injector
	faultCode codes.Code
	reg       *registry.Registry
	regName   string
}

// A ServerOption configures a [Server]. An option given a bad value makes
// NewServer return an error that names the option and the value.
type ServerOption func(*Server) error

// WithRateLimit limits the calls of the server, all methods together, with
// l: a *ratelimit.Limiter (whose refusals say when its next token comes),
// or any limiter with Allow() bool, such as golang.org/x/time/rate's.
func WithRateLimit(l ratelimit.Allower) ServerOption {
	return func(s *Server) error {
		if nilness.Is(l) {
			return errors.New("grpcmw: WithRateLimit with a nil limiter")
		}
		s.limiter = l
		s.tryer, _ = l.(interface{ Try(int) error })
		return nil
	}
}

// WithKeyedRateLimit gives each client its own limit in k (a
// *ratelimit.Keyed, or a limit a fleet shares), the client being named by
// key: nil means the peer's IP address; [MetadataKey] names it by a
// metadata value (an API key, a tenant). Keys appear in no status, trailer
// or log.
//
// The key k.Try is given may share its bytes with the connection's peer
// address (see peerKey): k may read it during the call, and must copy a
// key it keeps, as ratelimit.KeyedLimiter requires.
func WithKeyedRateLimit(k ratelimit.KeyedLimiter, key KeyFunc) ServerOption {
	return func(s *Server) error {
		if nilness.Is(k) {
			return errors.New("grpcmw: WithKeyedRateLimit with a nil limiter")
		}
		if key == nil {
			key = peerKey
		}
		s.keyed, s.key = k, key
		return nil
	}
}

// WithLoadShed runs each call only while it holds a slot of b; a call that
// finds none ends with code, UNAVAILABLE or RESOURCE_EXHAUSTED.
func WithLoadShed(b *bulkhead.Bulkhead, code codes.Code) ServerOption {
	return func(s *Server) error {
		if b == nil {
			return errors.New("grpcmw: WithLoadShed with a nil bulkhead")
		}
		if code != codes.Unavailable && code != codes.ResourceExhausted {
			return fmt.Errorf("grpcmw: WithLoadShed code %v is neither Unavailable nor ResourceExhausted", code)
		}
		s.bulkhead, s.shedCode = b, code
		return nil
	}
}

// WithAdaptiveLimit runs each call only while it holds a permit of l, an
// adaptive concurrency limit that moves with the handlers' latency, in
// place of WithLoadShed's fixed number. A call over the limit (after l's
// bounded wait, if it has one) ends with UNAVAILABLE and a pushback of l's
// hint, the latency it last sampled; WithDefaultPushback applies only to
// rejections without a hint, which l does not make. A call whose context
// ends while it waits ends with CANCELED or DEADLINE_EXCEEDED.
//
// The handler's latency (for a stream, the stream's) is l's sample, unless
// the call's context ended before the handler returned (the context's
// error is recorded: a client gone records nothing, a deadline passed is a
// drop) or the handler panicked (a drop; the permit is given back before
// the panic continues). With WithLoadShed too, a call takes the
// bulkhead's slot first.
func WithAdaptiveLimit(l *adaptive.Limiter) ServerOption {
	return func(s *Server) error {
		if l == nil {
			return errors.New("grpcmw: WithAdaptiveLimit with a nil limiter")
		}
		s.adaptive = l
		return nil
	}
}

// errHandlerPanicked is the outcome recorded for a handler that panicked.
var errHandlerPanicked = errors.New("grpcmw: handler panicked")

// WithDefaultPushback sets the pushback of rejections that carry no wait of their
// own: a full bulkhead, a limiter with only Allow. Default none.
func WithDefaultPushback(d time.Duration) ServerOption {
	return func(s *Server) error {
		if d < 0 {
			return fmt.Errorf("grpcmw: WithDefaultPushback(%v): negative", d)
		}
		s.pushback = d
		return nil
	}
}

// NewServer returns a Server configured by opts, or an error naming the
// first invalid option and its value: a nil option, a nil limiter,
// bulkhead or adaptive limiter, a load-shedding code other than UNAVAILABLE and
// RESOURCE_EXHAUSTED, a negative pushback. It never panics on its options.
func NewServer(opts ...ServerOption) (*Server, error) {
	s := &Server{}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("grpcmw: NewServer: opts[%d] is nil", i)
		}
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	if s.reg != nil {
		if err := s.reg.RegisterAll(s.policies()...); err != nil {
			return nil, fmt.Errorf("grpcmw: WithServerRegistry: %w", err)
		}
	}
	return s, nil
}

// A KeyFunc names the client a call comes from, for WithKeyedRateLimit.
type KeyFunc func(ctx context.Context) string

// peerKey is the default KeyFunc: the peer's IP address. For a TCP peer it
// is the address's bytes as they are (not printable, and not allocated); for
// any other, its String without a port.
func peerKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		ip := a.IP
		if v4 := ip.To4(); v4 != nil {
			ip = v4 // one key for 192.0.2.1 and ::ffff:192.0.2.1
		}
		// The key aliases the address's bytes, without a copy. That is
		// sound because nothing writes them (the transport sets a peer's
		// address once), and because the limiter reads the key only during
		// Try and copies a key it keeps: ratelimit.Keyed clones it when it
		// remembers a new key (strings.Clone in insert), and the
		// ratelimit.KeyedLimiter contract requires as much of any limiter
		// given to WithKeyedRateLimit: a kept key must not share bytes
		// that belong to the transport.
		return unsafe.String(unsafe.SliceData(ip), len(ip))
	}
	addr := p.Addr.String()
	if strings.IndexByte(addr, ':') >= 0 { // not "bufconn" nor a unix socket's path: no error to allocate
		if host, _, err := net.SplitHostPort(addr); err == nil {
			return host
		}
	}
	return addr
}

// MetadataKey returns a KeyFunc that names a call's client by the first
// value of the incoming metadata key name (an API key, a tenant); calls
// without it share the key "". Use it only where something in front has
// authenticated the value.
func MetadataKey(name string) KeyFunc {
	return func(ctx context.Context) string {
		if vs := metadata.ValueFromIncomingContext(ctx, name); len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
}

// rejection is a call refused before its handler ran.
type rejection struct {
	err      error // a status error
	pushback time.Duration
	has      bool // pushback is set
}

// admit applies the server's policies to a call; if it returns a
// rejection, the call must not run; otherwise, if s has a bulkhead, the
// caller must release its slot, and if s has an adaptive limit, end the
// permit admit returns (see s.done).
func (s *Server) admit(ctx context.Context) (adaptive.Permit, *rejection) {
	r := s.admitFixed(ctx)
	if r != nil || s.adaptive == nil {
		return adaptive.Permit{}, r
	}
	p, err := s.adaptive.Acquire(ctx)
	if err != nil {
		if s.bulkhead != nil {
			s.bulkhead.Release()
		}
		if !errors.Is(err, adaptive.ErrLimited) {
			return p, &rejection{err: status.FromContextError(err).Err()}
		}
		return p, s.reject(codes.Unavailable, "grpcmw: overloaded", err)
	}
	return p, nil
}

// done ends the permit of a call whose handler returned (returned) or
// panicked, with the context's error (nil if it has not ended).
func done(ctx context.Context, p adaptive.Permit, returned bool) {
	if !returned {
		p.Done(errHandlerPanicked)
		return
	}
	p.Done(ctx.Err())
}

// admitFixed applies the policies before the adaptive limit.
func (s *Server) admitFixed(ctx context.Context) *rejection {
	if err := ctx.Err(); err != nil {
		return &rejection{err: status.FromContextError(err).Err()}
	}
	if s.fault != nil {
		if r := s.injectFault(ctx); r != nil {
			return r
		}
	}
	if s.limiter != nil {
		var err error
		if s.tryer != nil {
			err = s.tryer.Try(1)
		} else if !s.limiter.Allow() {
			err = ratelimit.ErrLimited
		}
		if err != nil {
			return s.reject(codes.ResourceExhausted, "grpcmw: rate limited", err)
		}
	}
	if s.keyed != nil {
		if err := s.keyed.Try(s.key(ctx), 1); err != nil {
			return s.reject(codes.ResourceExhausted, "grpcmw: rate limited", err)
		}
	}
	if s.bulkhead != nil {
		if err := s.bulkhead.Acquire(ctx); err != nil {
			if !errors.Is(err, bulkhead.ErrFull) {
				return &rejection{err: status.FromContextError(err).Err()}
			}
			return s.reject(s.shedCode, "grpcmw: overloaded", err)
		}
	}
	return nil
}

func (s *Server) reject(code codes.Code, msg string, err error) *rejection {
	r := &rejection{}
	if d, ok := seawall.RetryAfter(err); ok {
		r.pushback, r.has = d, true
	} else if s.pushback > 0 {
		r.pushback, r.has = s.pushback, true
	}
	if r.has {
		msg += "; retry in " + waitText(r.pushback)
	}
	r.err = status.Error(code, msg)
	return r
}

// trailer returns the rejection's pushback trailer, nil if none.
func (r *rejection) trailer() metadata.MD {
	if !r.has {
		return nil
	}
	return pushbackTrailer(r.pushback)
}

// Unary is the unary server interceptor (a grpc.UnaryServerInterceptor).
func (s *Server) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p, r := s.admit(ctx)
	if r != nil {
		if md := r.trailer(); md != nil {
			grpc.SetTrailer(ctx, md)
		}
		return nil, r.err
	}
	if s.bulkhead != nil {
		defer s.bulkhead.Release()
	}
	if s.adaptive == nil {
		return handler(ctx, req)
	}
	returned := false
	defer func() { done(ctx, p, returned) }()
	resp, err := handler(ctx, req)
	returned = true
	return resp, err
}

// Stream is the streaming server interceptor (a
// grpc.StreamServerInterceptor).
func (s *Server) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	p, r := s.admit(ctx)
	if r != nil {
		if md := r.trailer(); md != nil {
			ss.SetTrailer(md)
		}
		return r.err
	}
	if s.bulkhead != nil {
		defer s.bulkhead.Release()
	}
	if s.adaptive == nil {
		return handler(srv, ss)
	}
	returned := false
	defer func() { done(ctx, p, returned) }()
	err := handler(srv, ss)
	returned = true
	return err
}
