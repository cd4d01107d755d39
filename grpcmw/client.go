package grpcmw

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

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
// waits for it. The breaker counts UNKNOWN, DEADLINE_EXCEEDED, INTERNAL,
// UNAVAILABLE (without pushback) and DATA_LOSS as failures, CANCELED as
// nothing, an overload (below) as its Classify says (breaker.DefaultClassify
// ignores it), and every other answer as a success (the server worked). A
// stream's outcome is that of its first response.
//
// # Shedding is not failure
//
// A RESOURCE_EXHAUSTED, and an UNAVAILABLE with a pushback trailer, is a
// server refusing work it cannot take now: the retry, the breaker and the
// throttle see it as an error for which seawall.IsOverload is true, with
// the pushback as its hint (0 without one). The retry waits the pushback
// (when the code is retried: WithRetryCodes), the breaker ignores it by
// default, the throttle counts it as a refusal. A stream's pushback is
// read from its trailer once it has ended. The error a call returns is the
// one the policies saw, so seawall.IsOverload is true of it too; a call
// with neither retries (none configured, or CallMaxAttempts(1)), breakers,
// a throttle nor hedging has no policy to show it to, and returns every
// error as the server sent it.
//
// # Throttling
//
// With WithThrottle, each attempt of a call, unary or streaming, asks a
// client-side [throttle.Throttle] after the breaker admitted it: while the
// server has been refusing more than it accepts, the throttle fails
// attempts locally with UNAVAILABLE, matching throttle.ErrThrottled,
// before they are sent (a throttled stream is not opened). A throttled
// attempt is not retried (its error has no hint) and gives its breaker
// permit back; an attempt the breaker refuses never reaches the throttle,
// so an open breaker does not count against the server. Retries are
// attempts, so the throttle counts and may refuse them; the retry budget
// bounds them separately. The throttle learns a stream's outcome when the
// breaker does: from its first response, or its end.
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
//
// With WithAttemptObserver, each attempt of an observed call, unary or
// stream establishment, is reported once it has ended (a
// seawall.Attempt), for a span to show (otelseawall.NewAttemptObserver).
// A hedged attempt (below) is reported as one attempt, whatever number of
// hedges it made: its outcome is the hedged call's.
//
// # Hedging
//
// With WithHedge, a unary call whose attempt is slow gets another attempt
// alongside it (a [hedge.Hedge], gRFC A6's hedging): after the hedge
// delay (fixed, or a percentile of recent latencies), up to MaxAttempts
// attempts at once, including the first; the first to succeed wins, and
// the others are cancelled. Hedge only idempotent methods: every attempt
// reaches the server. [CallNoHedge] turns hedging off for one call.
//
// An attempt that fails with a non-fatal code (WithHedgeCodes; default
// UNAVAILABLE, as for retries; gRFC A6's nonFatalStatusCodes) lets the
// others go on and starts the next hedge at once, or after the server's
// pushback; a negative or malformed pushback starts no more hedges (the
// others go on). An attempt that runs out of its attempt timeout is
// non-fatal too. Any other answer ends the call: the others are
// cancelled, and its error is returned. If every attempt fails, the call
// returns the first attempt's error. A hedge.Config with a NonFatal of its
// own decides in place of the codes (as WithRetry's Retryable does), from
// the attempt's error as the breaker sees it (seawall.IsOverload of a
// shed answer, seawall.Pushback of its pushback).
//
// Hedging sits inside the retries and outside the breaker, the throttle
// and the attempt timeout: each attempt of the retry loop is a hedged
// call, and each hedged attempt asks the breaker and the throttle and has
// its own attempt timeout. An open breaker or the throttle refusing the
// first attempt fails the call at once, as without hedging; refusing a
// hedge starts no more hedges, and cancels nothing. A hedge starts only
// while the call's breaker (with WithBreakers) is closed (or disabled):
// not while it is open, nor half-open, when the breaker's probes are
// testing whether the target is back and a hedge would be one probe more.
// Hedges spend from the retry budget: that of WithRetry, whose request
// counts once however many hedges and retries a call makes (also when the
// hedge.Config's Budget is that very budget), unless the hedge.Config has
// another Budget of its own; without WithRetry, only its own. A refusal
// starts no more hedges for the attempt and cancels nothing.
// [Client.HedgeMetrics] reads the hedge's counters, and WithRegistry
// registers it.
//
// Attempts run at once, so each hedge receives its reply in a message of
// its own, and the headers, trailers and peer that the call's options
// (grpc.Header, grpc.Trailer, grpc.Peer) ask for into its own too; the
// first attempt uses the caller's. When a hedge wins, its reply, header,
// trailer and peer are copied into the caller's (proto.Reset, then
// proto.Merge); a losing attempt's reply is never seen. The call returns
// once every attempt it made has ended (the losers are cancelled, and end
// at once), so that the caller may reuse its request and reply as soon as
// it has returned, as gRPC allows. A reply that is not a proto.Message (a
// codec of your own) cannot be copied so: such a call is not hedged.
//
// Streams are never hedged: a stream is committed by its first response,
// and hedging one would mean buffering the messages it sent (gRFC A6
// hedges streams; this package does not, yet).
type Client struct {
	retry          *retry.Retry // nil: no retries
	codes          codeSet
	breakers       *breaker.Group
	perTarget      bool
	attemptTimeout time.Duration
	userRetryable  bool // the retry.Config had its own Retryable
	throttle       *throttle.Throttle
	observer       seawall.AttemptObserver
	hedge          *hedge.Hedge // nil: no hedging
	hedgeCodes     codeSet
	hedgeNonFatal  func(error) bool // the hedge.Config's own NonFatal, if any
}

// A ClientOption configures a [Client]. An option given a bad value makes
// NewClient return an error that names the option and the value.
type ClientOption func(*clientOptions) error

type clientOptions struct {
	retry          *retry.Config
	codes          []codes.Code
	breakers       *breaker.Group
	perTarget      bool
	attemptTimeout time.Duration
	throttle       *throttle.Throttle
	reg            *registry.Registry
	regName        string
	observer       seawall.AttemptObserver
	hedge          *hedge.Config
	hedgeCodes     []codes.Code
}

// WithRetry turns retries on with cfg: MaxAttempts (including the first;
// default 3), backoff, MaxHint (which caps pushback too), budget. If cfg has
// a Retryable, it decides which errors are retried in place of the codes
// (WithRetryCodes). Its AttemptTimeout is the client's attempt timeout, as
// if set by WithAttemptTimeout. NewClient validates cfg as retry.New does.
func WithRetry(cfg retry.Config) ClientOption {
	return func(o *clientOptions) error {
		o.retry = &cfg
		return nil
	}
}

// WithRetryCodes sets the codes that are retried, in place of UNAVAILABLE;
// none means that no code is retried. A code that does not exist is an
// error.
func WithRetryCodes(c ...codes.Code) ClientOption {
	return func(o *clientOptions) error {
		for _, code := range c {
			if code > codes.Unauthenticated {
				return fmt.Errorf("grpcmw: WithRetryCodes: code %d does not exist", uint32(code))
			}
		}
		o.codes = append([]codes.Code{}, c...)
		return nil
	}
}

// WithHedge turns hedging of unary calls on with cfg (see [Client]):
// MaxAttempts (including the first; default 2), the delay (Delay, fixed;
// or Percentile, default the 95th of recent latencies), and, if it has
// them, a Gate of its own (asked before the breaker's), a Budget (in
// place of the retry's) and a NonFatal (in place of the codes,
// WithHedgeCodes). NewClient validates cfg as hedge.New does.
func WithHedge(cfg hedge.Config) ClientOption {
	return func(o *clientOptions) error {
		o.hedge = &cfg
		return nil
	}
}

// WithHedgeCodes sets the codes that are non-fatal for hedging, in place
// of UNAVAILABLE (gRFC A6's nonFatalStatusCodes): an attempt that fails
// with one lets the other attempts go on and starts the next hedge at
// once. None means that every error ends the call (a hedge then starts
// only after the delay). A code that does not exist is an error.
func WithHedgeCodes(c ...codes.Code) ClientOption {
	return func(o *clientOptions) error {
		for _, code := range c {
			if code > codes.Unauthenticated {
				return fmt.Errorf("grpcmw: WithHedgeCodes: code %d does not exist", uint32(code))
			}
		}
		o.hedgeCodes = append([]codes.Code{}, c...)
		return nil
	}
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
// BreakerPerTarget. A nil g, or a key that does not exist, is an error.
func WithBreakers(g *breaker.Group, key BreakerKey) ClientOption {
	return func(o *clientOptions) error {
		if g == nil {
			return errors.New("grpcmw: WithBreakers with a nil breaker group")
		}
		if key != BreakerPerMethod && key != BreakerPerTarget {
			return fmt.Errorf("grpcmw: WithBreakers: BreakerKey %d does not exist", int(key))
		}
		o.breakers, o.perTarget = g, key == BreakerPerTarget
		return nil
	}
}

// WithThrottle puts the client-side throttle th in front of every attempt
// of a call, unary or streaming, after the breaker (see [Client]). Share
// one throttle among the clients of one backend. A nil th is an error.
func WithThrottle(th *throttle.Throttle) ClientOption {
	return func(o *clientOptions) error {
		if th == nil {
			return errors.New("grpcmw: WithThrottle with a nil throttle")
		}
		o.throttle = th
		return nil
	}
}

// WithAttemptTimeout gives each attempt of a unary call a timeout of d,
// and each attempt of a server-streaming call that long to commit (see
// [Client]); 0 means none. A negative d is an error.
func WithAttemptTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) error {
		if d < 0 {
			return fmt.Errorf("grpcmw: WithAttemptTimeout(%v): negative", d)
		}
		o.attemptTimeout = d
		return nil
	}
}

// WithAttemptObserver reports each attempt of a call, unary or streaming,
// to o, which otelseawall.NewAttemptObserver records on the call's span:
// the interceptor asks o.Observing(ctx) once per call, and, if it is true,
// calls o.Attempt after each attempt (see seawall.Attempt), with the
// call's context. The attempts of a stream are the stream's
// establishments: an attempt ends when the stream opens (or, for a
// server-streaming call that is retried, when it commits, see [Client]),
// or fails to. A call that is not observed costs one method call more. A
// nil o is an error.
func WithAttemptObserver(o seawall.AttemptObserver) ClientOption {
	return func(opts *clientOptions) error {
		if o == nil {
			return errors.New("grpcmw: WithAttemptObserver with a nil observer")
		}
		opts.observer = o
		return nil
	}
}

// NewClient returns a Client configured by opts, or an error naming the
// first invalid option and its value: a nil option, a field of the
// retry.Config or of the hedge.Config, a negative attempt timeout, a code that does not exist, a
// nil breaker group, a BreakerKey that does not exist. It never panics on
// its options.
func NewClient(opts ...ClientOption) (*Client, error) {
	o := clientOptions{codes: []codes.Code{codes.Unavailable}, hedgeCodes: []codes.Code{codes.Unavailable}}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("grpcmw: NewClient: opts[%d] is nil", i)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &Client{breakers: o.breakers, perTarget: o.perTarget, attemptTimeout: o.attemptTimeout, throttle: o.throttle, observer: o.observer}
	for _, code := range o.codes {
		c.codes.add(code)
	}
	if o.retry != nil {
		cfg := *o.retry
		if cfg.AttemptTimeout < 0 {
			return nil, fmt.Errorf("grpcmw: WithRetry: retry: AttemptTimeout %v is negative", cfg.AttemptTimeout)
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
			return nil, fmt.Errorf("grpcmw: WithRetry: %w", err)
		}
		c.retry = r
	}
	if o.hedge != nil {
		if err := c.newHedge(*o.hedge, o.hedgeCodes); err != nil {
			return nil, err
		}
	}
	if o.reg != nil {
		if err := o.reg.RegisterAll(c.policies(o.regName)...); err != nil {
			return nil, fmt.Errorf("grpcmw: WithRegistry: %w", err)
		}
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

// HedgeMetrics returns a snapshot of the hedge counters of c; zeros if
// hedging is off.
func (c *Client) HedgeMetrics() hedge.Metrics {
	if c.hedge == nil {
		return hedge.Metrics{}
	}
	return c.hedge.Metrics()
}

// codeSet is a set of gRPC codes.
type codeSet uint32

func (s *codeSet) add(c codes.Code)     { *s |= 1 << c }
func (s codeSet) has(c codes.Code) bool { return c < 32 && s&(1<<c) != 0 }
