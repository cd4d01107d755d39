package grpcmw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/retry"
)

// PushbackKey is the trailer in which a server asks a client to wait
// before its next retry, in whole milliseconds (gRFC A6): the client's next
// retry waits exactly that long; a negative or malformed value means "do
// not retry".
const PushbackKey = "grpc-retry-pushback-ms"

// A Client holds the client interceptors, [Client.Unary] and
// [Client.Stream], and what they share: a retry policy with its budget,
// and breakers. Install both on a connection:
//
//	c, err := grpcmw.NewClient(grpcmw.WithRetry(retry.Config{MaxAttempts: 3}))
//	conn, err := grpc.NewClient(target,
//		grpc.WithChainUnaryInterceptor(c.Unary),
//		grpc.WithChainStreamInterceptor(c.Stream))
//
// # Retries
//
// Retries are off unless WithRetry is given. Then a call that fails with a
// retryable code (WithRetryCodes; default UNAVAILABLE) is made again, up to
// MaxAttempts attempts including the first, with the retry's backoff and
// within its budget (share one with retry.Config.SharedBudget, or use its
// tokens mode, which is gRPC's own retry throttling). A server's pushback
// (the PushbackKey trailer) sets the next delay exactly; a negative or
// malformed pushback ends the retries. No retry starts past the call's
// deadline, nor waits past it. The per-call options [CallMaxAttempts] and
// [CallRetryCodes] override the client's settings for one call.
//
// Streams are retried only while nothing has been received from the
// server: a stream is committed by its first response header (whether or
// not the caller asks for it) or message, and a committed stream is never
// replayed (gRFC A6). A server-streaming call (one
// request message, many responses) is retried until it commits, its one
// request replayed; client-streaming and bidirectional calls are retried
// only when the stream cannot be opened, never once a message has been
// sent (no buffer of sent messages is kept).
//
// Do not combine these retries with gRPC's own (a service config with a
// retryPolicy): each of its attempts would count here as one, and the
// retries multiply. Dial with grpc.WithDisableRetry() when you use this
// package's.
//
// # Breakers and timeouts
//
// With WithBreakers, each attempt first asks a breaker of the group, one
// per method (or per target: BreakerPerTarget); an open breaker fails the
// call at once, with UNAVAILABLE and a message saying so, and no retry
// waits for it. The breaker counts UNKNOWN, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE and DATA_LOSS as failures,
// CANCELED as nothing, and every other answer as a success (the server
// worked). A stream's outcome is that of its first response.
//
// With WithAttemptTimeout, each attempt of a unary call has its own
// timeout, and one that runs out of it is retried. An attempt of a
// server-streaming call has that long to commit: to receive its first
// message, or its header if the caller asks for it (Header); once
// committed, the stream lives as long as the call. An attempt cut by its
// timeout after its header arrived unasked is committed all the same: it
// is not retried, and the call ends with DEADLINE_EXCEEDED. Client-streaming and
// bidirectional calls have no attempt timeout, only the call's deadline.
// An attempt that runs out of its timeout counts as a failure for the
// breaker.
type Client struct {
	retry          *retry.Retry // nil: no retries
	codes          codeSet
	breakers       *breaker.Group
	perTarget      bool
	attemptTimeout time.Duration
	userRetryable  bool // the retry.Config had its own Retryable
}

// A ClientOption configures a [Client].
type ClientOption func(*clientOptions)

type clientOptions struct {
	retry          *retry.Config
	codes          []codes.Code
	breakers       *breaker.Group
	perTarget      bool
	attemptTimeout time.Duration
}

// WithRetry turns retries on with cfg: MaxAttempts (including the first;
// default 3), backoff, MaxHint (which caps pushback too), budget. If cfg has
// a Retryable, it decides which errors are retried in place of the codes
// (WithRetryCodes). Its AttemptTimeout is the client's attempt timeout, as
// if set by WithAttemptTimeout.
func WithRetry(cfg retry.Config) ClientOption {
	return func(o *clientOptions) { o.retry = &cfg }
}

// WithRetryCodes sets the codes that are retried, in place of UNAVAILABLE.
func WithRetryCodes(c ...codes.Code) ClientOption {
	return func(o *clientOptions) { o.codes = append([]codes.Code{}, c...) }
}

// BreakerPerTarget is a BreakerKey: one breaker per connection target.
// BreakerPerMethod (the default) is one per full method name.
const (
	BreakerPerMethod BreakerKey = iota
	BreakerPerTarget
)

// A BreakerKey says what a breaker of a [Client] protects.
type BreakerKey int

// WithBreakers puts a breaker of g in front of every attempt: one per full
// method name ("/pkg.Service/Method"), or per connection target with
// BreakerPerTarget.
func WithBreakers(g *breaker.Group, key BreakerKey) ClientOption {
	return func(o *clientOptions) { o.breakers, o.perTarget = g, key == BreakerPerTarget }
}

// WithAttemptTimeout gives each attempt of a unary call a timeout of d,
// and each attempt of a server-streaming call that long to commit (see
// [Client]).
func WithAttemptTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.attemptTimeout = d }
}

// NewClient returns a Client configured by opts, or an error naming the
// first invalid setting: a field of the retry.Config, a negative attempt
// timeout, a code that does not exist, a BreakerKey that does not exist.
func NewClient(opts ...ClientOption) (*Client, error) {
	o := clientOptions{codes: []codes.Code{codes.Unavailable}}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Client{breakers: o.breakers, perTarget: o.perTarget, attemptTimeout: o.attemptTimeout}
	if o.attemptTimeout < 0 {
		return nil, fmt.Errorf("grpcmw: attempt timeout %v is negative", o.attemptTimeout)
	}
	for _, code := range o.codes {
		if code > codes.Unauthenticated {
			return nil, fmt.Errorf("grpcmw: retry code %d does not exist", uint32(code))
		}
		c.codes.add(code)
	}
	if o.retry != nil {
		cfg := *o.retry
		if cfg.AttemptTimeout < 0 {
			return nil, fmt.Errorf("grpcmw: retry: AttemptTimeout %v is negative", cfg.AttemptTimeout)
		}
		if c.attemptTimeout == 0 {
			c.attemptTimeout = cfg.AttemptTimeout
		}
		cfg.AttemptTimeout = 0 // timed here: a stream outlives its attempt
		if cfg.Retryable != nil {
			c.userRetryable = true
		} else {
			// Which codes are retried is decided per call (CallRetryCodes),
			// before the loop sees the error: what is not retried is marked
			// permanent. The default then refuses what it refuses
			// everywhere, such as a local open breaker.
			cfg.Retryable = retry.DefaultRetryable
		}
		r, err := retry.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("grpcmw: %w", err)
		}
		c.retry = r
	}
	return c, nil
}

// Metrics returns a snapshot of the retry counters of c; zeros if retries
// are off. The breakers' metrics are those of the group.
func (c *Client) Metrics() retry.Metrics {
	if c.retry == nil {
		return retry.Metrics{}
	}
	return c.retry.Metrics()
}

// codeSet is a set of gRPC codes.
type codeSet uint32

func (s *codeSet) add(c codes.Code)     { *s |= 1 << c }
func (s codeSet) has(c codes.Code) bool { return c < 32 && s&(1<<c) != 0 }

// callOption is a per-call override, passed with the call's grpc options.
type callOption struct {
	grpc.EmptyCallOption
	maxAttempts int
	codes       *codeSet
}

// CallMaxAttempts overrides, for one call, the number of attempts
// including the first (1: no retry); it is clamped to 1…1000.
func CallMaxAttempts(n int) grpc.CallOption {
	return callOption{maxAttempts: max(n, 1)}
}

// CallRetryCodes overrides, for one call, the codes that are retried.
func CallRetryCodes(c ...codes.Code) grpc.CallOption {
	var s codeSet
	for _, code := range c {
		if code <= codes.Unauthenticated {
			s.add(code)
		}
	}
	return callOption{codes: &s}
}

// call is the settings of one call.
type call struct {
	maxAttempts int // 0: the client's
	codes       codeSet
}

func (c *Client) settings(opts []grpc.CallOption) call {
	s := call{codes: c.codes}
	for _, o := range opts {
		if co, ok := o.(callOption); ok {
			if co.maxAttempts > 0 {
				s.maxAttempts = co.maxAttempts
			}
			if co.codes != nil {
				s.codes = *co.codes
			}
		}
	}
	return s
}

// classify returns err as the retry loop must see it: permanent unless it
// is retried, with the server's pushback if any.
func (c *Client) classify(s *call, err error, trailer metadata.MD, timedOut bool) error {
	if err == nil || seawall.IsPermanent(err) {
		return err
	}
	if timedOut {
		return &attemptTimeoutError{err: err}
	}
	if !c.userRetryable && !s.codes.has(status.Code(err)) {
		return seawall.Permanent(err)
	}
	vs := trailer.Get(PushbackKey)
	if len(vs) == 0 {
		return err
	}
	ms, ok := parsePushback(vs)
	if !ok {
		return seawall.Permanent(err) // the server says: do not retry
	}
	return seawall.WithPushback(err, time.Duration(ms)*time.Millisecond)
}

// parsePushback parses the values of a PushbackKey trailer: exactly one
// non-negative integer of at most 9 digits (11.5 days).
func parsePushback(vs []string) (ms int64, ok bool) {
	if len(vs) != 1 || len(vs[0]) == 0 || len(vs[0]) > 9 {
		return 0, false
	}
	for _, c := range []byte(vs[0]) {
		if c < '0' || c > '9' {
			return 0, false // a sign ("-0" too), a space, a fraction
		}
		ms = ms*10 + int64(c-'0')
	}
	return ms, true
}

// attemptTimeoutError is the error of a unary attempt that ran out of its
// attempt timeout while the call's context had not ended: retried whatever
// the codes say. It keeps the attempt's DEADLINE_EXCEEDED status.
type attemptTimeoutError struct{ err error }

func (e *attemptTimeoutError) Error() string { return "grpcmw: attempt timed out: " + e.err.Error() }
func (e *attemptTimeoutError) Unwrap() error { return e.err }

// rejectedError is a call refused by an open breaker: UNAVAILABLE, and
// matching breaker.ErrOpen.
type rejectedError struct {
	err    error
	status *status.Status
}

func (e *rejectedError) Error() string              { return e.status.Message() }
func (e *rejectedError) Unwrap() error              { return e.err }
func (e *rejectedError) GRPCStatus() *status.Status { return e.status }

// permit asks the breaker for this call, if any.
func (c *Client) permit(cc *grpc.ClientConn, method string) (breaker.Permit, error) {
	if c.breakers == nil {
		return breaker.Permit{}, nil
	}
	key := method
	if c.perTarget {
		key = cc.Target()
	}
	p, err := c.breakers.Get(key).Allow()
	if err != nil {
		msg := "grpcmw: circuit breaker open for " + key
		if d, ok := seawall.RetryAfter(err); ok {
			msg += "; it lets a call through in " + d.Round(time.Millisecond).String()
		}
		return p, &rejectedError{err: err, status: status.New(codes.Unavailable, msg)}
	}
	return p, nil
}

// record tells the breaker the outcome of an attempt.
func record(p breaker.Permit, err error) {
	if errors.Is(err, context.Canceled) {
		p.Record(breaker.Ignore)
		return
	}
	switch status.Code(err) {
	case codes.OK:
		p.Record(breaker.Success)
	case codes.Canceled:
		p.Record(breaker.Ignore)
	case codes.Unknown, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unavailable, codes.DataLoss:
		p.Record(breaker.Failure)
	default:
		p.Record(breaker.Success)
	}
}

// Unary is the unary client interceptor (a grpc.UnaryClientInterceptor).
func (c *Client) Unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	s := c.settings(opts)
	if c.retry == nil || s.maxAttempts == 1 {
		return c.unaryAttempt(ctx, &s, method, req, reply, cc, invoker, opts, false)
	}
	l := c.retry.Loop(ctx)
	if s.maxAttempts > 0 {
		l.SetMaxAttempts(s.maxAttempts)
	}
	for l.Next() {
		l.Record(c.unaryAttempt(l.Context(), &s, method, req, reply, cc, invoker, opts, true))
	}
	return l.Err()
}

// unaryAttempt makes one attempt of a unary call.
func (c *Client) unaryAttempt(ctx context.Context, s *call, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption, retrying bool) error {
	p, err := c.permit(cc, method)
	if err != nil {
		return err
	}
	actx := ctx
	if c.attemptTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
	}
	var trailer metadata.MD
	if retrying {
		opts = append(opts[:len(opts):len(opts)], grpc.Trailer(&trailer))
	}
	err = invoker(actx, method, req, reply, cc, opts...)
	record(p, err)
	if !retrying {
		return err
	}
	timedOut := err != nil && actx != ctx && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	return c.classify(s, err, trailer, timedOut)
}

// Stream is the streaming client interceptor (a
// grpc.StreamClientInterceptor).
func (c *Client) Stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s := c.settings(opts)
	if c.breakers == nil && (c.retry == nil || s.maxAttempts == 1) {
		return streamer(ctx, desc, cc, method, opts...) // nothing to do
	}
	cs := &clientStream{c: c, s: s, ctx: ctx, desc: desc, cc: cc, method: method, streamer: streamer, opts: opts}
	if c.retry == nil || s.maxAttempts == 1 {
		if err := cs.open(ctx); err != nil {
			return nil, err
		}
		return cs, nil
	}
	cs.replay = desc.ServerStreams && !desc.ClientStreams
	cs.loop = c.retry.Loop(ctx)
	if s.maxAttempts > 0 {
		cs.loop.SetMaxAttempts(s.maxAttempts)
	}
	for cs.loop.Next() {
		err := cs.open(ctx)
		if err == nil {
			if !cs.replay {
				cs.loop.Record(nil) // committed: nothing more to retry
			}
			return cs, nil
		}
		cs.loop.Record(c.classify(&s, err, nil, false))
	}
	return nil, cs.loop.Err()
}

// clientStream is a client stream with its breaker permit and, for a
// server-streaming call, what it needs to retry until it commits.
type clientStream struct {
	grpc.ClientStream // the current attempt's
	c                 *Client
	s                 call
	ctx               context.Context
	desc              *grpc.StreamDesc
	cc                *grpc.ClientConn
	method            string
	streamer          grpc.Streamer
	opts              []grpc.CallOption

	mu        sync.Mutex
	permit    breaker.Permit
	recorded  bool
	stopAfter func() bool

	replay    bool          // a server-streaming call that has not committed yet
	timer     *attemptTimer // the current attempt's timeout, if any
	loop      retry.Loop
	sent      any  // the request message, to replay
	closeSent bool // CloseSend was called
}

// open opens a stream for a new attempt.
func (cs *clientStream) open(ctx context.Context) error {
	p, err := cs.c.permit(cs.cc, cs.method)
	if err != nil {
		return err
	}
	sctx := ctx
	cs.timer = nil
	if cs.replay && cs.c.attemptTimeout > 0 {
		// The attempt timeout bounds the wait for the first response:
		// commit stops the timer, and the stream then lives as long as
		// the call.
		var cancel context.CancelFunc
		sctx, cancel = context.WithCancel(ctx)
		t := &attemptTimer{cancel: cancel}
		t.timer = time.AfterFunc(cs.c.attemptTimeout, func() { t.fired.Store(true); cancel() })
		cs.timer = t
	}
	st, err := cs.streamer(sctx, cs.desc, cs.cc, cs.method, cs.opts...)
	if err != nil {
		cs.endAttempt()
		record(p, err)
		return err
	}
	cs.ClientStream = st
	if cs.c.breakers != nil {
		cs.mu.Lock()
		cs.permit, cs.recorded = p, false
		cs.mu.Unlock()
		// A stream abandoned before its first response (its context
		// cancelled) must still give its permit back.
		cs.stopAfter = context.AfterFunc(ctx, func() { cs.done(context.Canceled) })
	}
	return nil
}

// errAttemptTimedOut is the outcome of a streaming attempt cut by its
// attempt timeout: a failure, where the cut itself reads as a cancellation.
var errAttemptTimedOut = status.Error(codes.DeadlineExceeded, "grpcmw: attempt timed out")

// attemptTimer is the attempt timeout of a server-streaming attempt.
type attemptTimer struct {
	timer  *time.Timer
	cancel context.CancelFunc
	fired  atomic.Bool
}

// endAttempt stops the current attempt's timer and ends its context, and
// reports whether the timer had fired.
func (cs *clientStream) endAttempt() (timedOut bool) {
	t := cs.timer
	if t == nil {
		return false
	}
	t.timer.Stop()
	t.cancel()
	return t.fired.Load()
}

// done records the outcome of the current attempt with its breaker, once.
func (cs *clientStream) done(err error) {
	if cs.c.breakers == nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.recorded {
		return
	}
	cs.recorded = true
	record(cs.permit, err)
	if cs.stopAfter != nil {
		cs.stopAfter()
	}
}

func (cs *clientStream) SendMsg(m any) error {
	if cs.replay {
		cs.sent = m
	}
	return cs.ClientStream.SendMsg(m)
}

func (cs *clientStream) CloseSend() error {
	cs.closeSent = true
	return cs.ClientStream.CloseSend()
}

func (cs *clientStream) Header() (metadata.MD, error) {
	md, err := cs.ClientStream.Header()
	if err == nil && md != nil {
		cs.commit()
	}
	return md, err
}

// commit marks the stream as committed: a response has come.
func (cs *clientStream) commit() {
	cs.done(nil)
	if cs.timer != nil {
		cs.timer.timer.Stop()
	}
	if cs.replay {
		cs.replay = false
		cs.loop.Record(nil)
	}
}

func (cs *clientStream) RecvMsg(m any) error {
	for {
		err := cs.ClientStream.RecvMsg(m)
		switch {
		case err == nil:
			cs.commit()
			return nil
		case err == io.EOF:
			cs.commit()
			cs.endAttempt()
			return err
		}
		timedOut := cs.endAttempt() && cs.ctx.Err() == nil
		if timedOut {
			cs.done(errAttemptTimedOut) // a failure, not a cancellation
		} else {
			cs.done(err)
		}
		if !cs.replay {
			return err
		}
		if cs.headerReceived() {
			// Committed by its header, which the caller did not ask for:
			// never replayed (gRFC A6), the attempt's error is the call's.
			cs.replay = false
			cs.loop.Record(seawall.Permanent(err))
			if timedOut {
				return errAttemptTimedOut // not the context.Canceled of the cut
			}
			return err
		}
		// Nothing has been received: the attempt failed, and may be retried.
		cs.loop.Record(cs.c.classify(&cs.s, err, cs.ClientStream.Trailer(), timedOut))
		if !cs.retryStream() {
			if lerr := cs.loop.Err(); lerr != nil {
				return lerr
			}
			return err
		}
	}
}

// headerReceived reports, once RecvMsg has returned an error, whether the
// attempt received a response header. Header does not block then (the
// stream has ended), and it returns nil metadata, with a nil error, for a
// stream that ended without a header: a trailers-only answer, or an
// attempt cut before any response (grpc.ClientStream's doc).
func (cs *clientStream) headerReceived() bool {
	md, err := cs.ClientStream.Header()
	return err == nil && md != nil
}

// retryStream opens the streams of the next attempts, replaying the
// request, until one opens or the loop ends; it reports whether one did.
func (cs *clientStream) retryStream() bool {
	for cs.loop.Next() {
		err := cs.open(cs.ctx)
		if err == nil && cs.sent != nil {
			err = cs.ClientStream.SendMsg(cs.sent)
		}
		if err == nil && cs.closeSent {
			err = cs.ClientStream.CloseSend()
		}
		if err == nil {
			return true
		}
		cs.endAttempt()
		cs.done(err)
		cs.loop.Record(cs.c.classify(&cs.s, err, nil, false))
	}
	cs.replay = false
	return false
}
