package grpcmw

import (
	"context"
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
	"github.com/seawall-go/seawall/throttle"
)

// Stream is the streaming client interceptor (a
// grpc.StreamClientInterceptor).
func (c *Client) Stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s := c.settings(opts)
	rep := c.observe(ctx)
	if c.breakers == nil && c.throttle == nil && (c.retry == nil || s.maxAttempts == 1) {
		if rep.o != nil {
			st, err := streamer(ctx, desc, cc, method, opts...)
			rep.once(err, "")
			return st, err
		}
		return streamer(ctx, desc, cc, method, opts...) // nothing to do
	}
	cs := &clientStream{c: c, s: s, ctx: ctx, desc: desc, cc: cc, method: method, streamer: streamer, opts: opts, rep: rep}
	if c.retry == nil || s.maxAttempts == 1 {
		err := cs.open(ctx)
		if rep.o != nil {
			rep.once(err, cs.refused)
		}
		if err != nil {
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
		cs.refused = ""
		err := cs.open(ctx)
		if err == nil {
			if !cs.replay {
				cs.loop.Record(nil) // committed: nothing more to retry
				if rep.o != nil {
					cs.rep.recorded(&cs.loop, nil, "")
				}
			}
			return cs, nil
		}
		cs.loop.Record(c.classify(&s, err, nil))
		if rep.o != nil {
			cs.rep.recorded(&cs.loop, err, cs.refused)
		}
	}
	return nil, cs.loop.Err()
}

// clientStream is a client stream with its breaker and throttle permits
// and, for a server-streaming call, what it needs to retry until it
// commits.
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
	tpermit   throttle.Permit
	recorded  bool
	stopAfter func() bool

	replay    bool          // a server-streaming call that has not committed yet
	timer     *attemptTimer // the current attempt's timeout, if any
	loop      retry.Loop
	sent      any      // the request message, to replay
	closeSent bool     // CloseSend was called
	rep       reporter // the call's observer, if it is observed
	refused   string   // the policy that refused the last attempt: "breaker", "throttle"; "" if it was sent
}

// open opens a stream for a new attempt: it asks the breaker, if any,
// then the throttle, if any. A throttled attempt is not opened, and gives
// its breaker permit back unused.
func (cs *clientStream) open(ctx context.Context) error {
	p, err := cs.c.permit(cs.cc, cs.method)
	if err != nil {
		cs.refused = "breaker"
		return err
	}
	var tp throttle.Permit
	if cs.c.throttle != nil {
		if tp, err = cs.c.throttle.Allow(); err != nil {
			cs.refused = "throttle"
			record(p, errThrottled)
			return errThrottled
		}
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
		err = answer(err, nil)
		tp.Done(err)
		record(p, err)
		return err
	}
	cs.ClientStream = st
	if cs.c.breakers != nil || cs.c.throttle != nil {
		cs.mu.Lock()
		cs.permit, cs.tpermit, cs.recorded = p, tp, false
		cs.mu.Unlock()
		// A stream abandoned before its first response (its context
		// cancelled) must still give its permits back.
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

// done records the outcome of the current attempt with its breaker and
// its throttle, once: err is what the policies see (see answer).
func (cs *clientStream) done(err error) {
	if cs.c.breakers == nil && cs.c.throttle == nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.recorded {
		return
	}
	cs.recorded = true
	err = answer(err, nil) // a RESOURCE_EXHAUSTED is an overload, trailer or not
	cs.tpermit.Done(err)
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
		if cs.rep.o != nil {
			cs.rep.recorded(&cs.loop, nil, "")
		}
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
		// The stream has ended: its trailer is there, and says whether an
		// UNAVAILABLE is an overload.
		err = answer(err, cs.ClientStream.Trailer())
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
				err = errAttemptTimedOut // not the context.Canceled of the cut
			}
			if cs.rep.o != nil {
				cs.rep.recorded(&cs.loop, err, "")
			}
			return err
		}
		// Nothing has been received: the attempt failed, and may be retried.
		if timedOut {
			cs.loop.Record(&attemptTimeoutError{err: err})
		} else {
			cs.loop.Record(cs.c.classify(&cs.s, err, cs.ClientStream.Trailer()))
		}
		if cs.rep.o != nil {
			if timedOut {
				cs.rep.recorded(&cs.loop, errAttemptTimedOut, "")
			} else {
				cs.rep.recorded(&cs.loop, err, "")
			}
		}
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
		cs.refused = ""
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
		cs.loop.Record(cs.c.classify(&cs.s, err, nil))
		if cs.rep.o != nil {
			cs.rep.recorded(&cs.loop, err, cs.refused)
		}
	}
	cs.replay = false
	return false
}
