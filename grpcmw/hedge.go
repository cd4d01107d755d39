package grpcmw

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/hedge"
)

// Hedged unary calls (see the Hedging section of the Client doc): a
// hedged call is one attempt of the retry loop, or the call itself without
// retries, made as a hedge.GetGated call whose attempts are those of
// unaryCall.attempt.

// newHedge builds the client's Hedge from cfg, with the client's non-fatal
// rule and, unless cfg has one, the retry's budget.
func (c *Client) newHedge(cfg hedge.Config, nonFatal []codes.Code) error {
	for _, code := range nonFatal {
		c.hedgeCodes.add(code)
	}
	c.hedgeNonFatal = cfg.NonFatal
	cfg.NonFatal = c.nonFatal
	if c.retry != nil {
		if b := c.retry.Budget(); b != nil && (cfg.Budget == nil || cfg.Budget == hedge.Budget(b)) {
			// The retry counts the call's request; a Budget with Request
			// would count it once more per attempt of the retry.
			cfg.Budget = hedge.SpendOnly(b)
		}
	}
	h, err := hedge.New(cfg)
	if err != nil {
		return fmt.Errorf("grpcmw: WithHedge: %w", err)
	}
	c.hedge = h
	return nil
}

// hedging reports whether the call u, with settings s, is hedged: the
// client hedges, the call does not say no, and its reply can be copied.
func (u *unaryCall) hedging(s *call) bool {
	if u.c.hedge == nil || s.noHedge {
		return false
	}
	_, ok := u.reply.(proto.Message)
	return ok
}

// attemptError is the error of an attempt of a hedged call: err as the
// policies saw it (see answer), with what the Hedge needs to know of it;
// its tree is hedgeErr, err marked with its pushback or as "stop hedging".
type attemptError struct {
	err      error
	hedgeErr error
	owner    bool        // made with the caller's reply and options
	refused  string      // the local policy that refused it, if one did
	timedOut bool        // it ran out of its attempt timeout
	ctxEnded bool        // its context ended otherwise: the call's, or the Hedge cancelled it
	trailer  metadata.MD // its trailer
	reply    *hedgeReply // its own reply, header, trailer and peer, if not the owner
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.hedgeErr }

// nonFatal is the client's hedge.Config.NonFatal (see the Client doc).
func (c *Client) nonFatal(err error) bool {
	e, ok := err.(*attemptError)
	switch {
	case !ok || e.ctxEnded:
		return false
	case e.refused != "":
		// The first attempt refused fails the call fast; a hedge refused
		// is marked hedge.StopHedging, and cancels nothing.
		return !e.owner
	case e.timedOut:
		return true
	case c.hedgeNonFatal != nil:
		return c.hedgeNonFatal(err)
	}
	return c.hedgeCodes.has(status.Code(e.err))
}

// hedgedCall is one hedged call. Its first attempt to begin is its owner,
// made with the caller's reply and options; every other attempt is made
// with a hedgeReply of its own. The owner is almost always the attempt on
// the caller's goroutine, but a hedge whose delay is shorter than the time
// that goroutine takes to begin may begin first. The call returns once
// every attempt that began has ended (hedge.Get cancels them all before it
// returns, and a cancelled attempt ends at once), so that nothing of the
// call, its request, reply or options, is touched after it returns.
type hedgedCall struct {
	u          unaryCall                // the owner's: the caller's reply, opts with the trailer option
	callerOpts []grpc.CallOption        // the call's options, as the caller gave them
	trailer    *metadata.MD             // the owner's trailer
	t          trailerOpts              // the owner's trailer option, if the caller of hedged gave none
	replyType  protoreflect.MessageType // the reply's: read before the owner writes the reply

	mu      sync.Mutex
	began   bool          // an attempt has begun: the owner
	closed  bool          // the call is returning: no attempt may begin
	running int           // attempts begun and not ended
	idle    chan struct{} // closed when running drops to 0, if the call waits for it
}

// hedgeReply is what an attempt other than the owner receives into.
type hedgeReply struct {
	reply   proto.Message
	header  metadata.MD
	trailer metadata.MD
	peer    peer.Peer
	opts    []grpc.CallOption
}

// hedged makes the call u as a hedged call, as unaryCall.attempt makes
// one attempt, and returns what attempt would for the attempt whose
// outcome the call takes. u.opts are the owner's options: callerOpts, and
// the grpc.Trailer option that fills in *trailer; if trailer is nil,
// hedged makes them. *trailer is then the trailer of that attempt, and
// u.refused says whether a local policy refused it. ctx must be the
// call's (or its retry attempt's) and u's reply a proto.Message.
func (u *unaryCall) hedged(ctx context.Context, callerOpts []grpc.CallOption, trailer *metadata.MD) (timedOut bool, err error) {
	h := &hedgedCall{u: *u, callerOpts: callerOpts, trailer: trailer, replyType: u.reply.(proto.Message).ProtoReflect().Type()}
	if trailer == nil {
		h.u.opts, h.trailer = h.t.with(callerOpts), &h.t.trailer
	}
	var gate func() bool
	if u.c.breakers != nil {
		gate = h.breakerClosed
	}
	win, err := hedge.GetGated(ctx, u.c.hedge, gate, h.attempt, nil)
	h.wait() // for the attempts that lost, the owner among them maybe
	switch e := err.(type) {
	case nil:
		u.refused = ""
		if win != nil {
			h.adopt(win, win.trailer)
			proto.Reset(u.reply.(proto.Message))
			proto.Merge(u.reply.(proto.Message), win.reply)
		}
		return false, nil
	case *attemptError:
		u.refused = e.refused
		if e.reply != nil {
			h.adopt(e.reply, e.trailer)
		}
		return e.timedOut, e.err
	default: // ctx ended while no attempt was running
		u.refused = ""
		return false, status.FromContextError(err).Err()
	}
}

// begin reports whether an attempt may begin, the call not returning, and
// whether it is the owner. An attempt that begins must end.
func (h *hedgedCall) begin() (owner, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false, false
	}
	owner, h.began = !h.began, true
	h.running++
	return owner, true
}

func (h *hedgedCall) end() {
	h.mu.Lock()
	if h.running--; h.running == 0 && h.idle != nil {
		close(h.idle)
	}
	h.mu.Unlock()
}

// wait lets no more attempts begin, and waits for those running to end.
func (h *hedgedCall) wait() {
	h.mu.Lock()
	h.closed = true
	if h.running == 0 {
		h.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	h.idle = idle
	h.mu.Unlock()
	<-idle
}

// attempt is the operation of the hedged call: one attempt, with the
// caller's reply if it is the owner, else with one of its own, which it
// returns if it succeeds.
func (h *hedgedCall) attempt(ctx context.Context) (*hedgeReply, error) {
	owner, ok := h.begin()
	if !ok {
		return nil, context.Canceled // too late: the call has its outcome
	}
	defer h.end()
	a := h.u
	trailer := h.trailer
	var r *hedgeReply
	if !owner {
		r = h.newReply()
		a.reply, a.opts, trailer = r.reply, r.opts, &r.trailer
	}
	timedOut, err := a.attempt(ctx, trailer)
	if err == nil {
		return r, nil
	}
	e := &attemptError{err: err, hedgeErr: err, owner: owner, refused: a.refused, timedOut: timedOut, trailer: *trailer, reply: r}
	e.ctxEnded = !timedOut && ctx.Err() != nil
	if e.refused != "" {
		e.hedgeErr = hedge.StopHedging(err) // (if a hedge's: the first's fails the call)
	} else if vs := e.trailer.Get(PushbackKey); len(vs) > 0 {
		if d, ok := parsePushback(vs); ok {
			e.hedgeErr = seawall.WithPushback(err, d) // the next hedge waits d
		} else {
			e.hedgeErr = hedge.StopHedging(err) // the server says: do not try again
		}
	}
	return nil, e
}

// newReply returns the reply of an attempt that is not the owner: a new
// message of the reply's type, and the caller's options with its own
// trailer (and header and peer, if the caller asked for them) in place of
// the caller's.
func (h *hedgedCall) newReply() *hedgeReply {
	r := &hedgeReply{reply: h.replyType.New().Interface()}
	r.opts = make([]grpc.CallOption, 0, len(h.callerOpts)+3)
	var header, peerAddr bool
	for _, o := range h.callerOpts {
		switch o.(type) {
		case grpc.HeaderCallOption:
			header = true
		case grpc.PeerCallOption:
			peerAddr = true
		case grpc.TrailerCallOption:
		default:
			r.opts = append(r.opts, o)
		}
	}
	r.opts = append(r.opts, grpc.Trailer(&r.trailer))
	if header {
		r.opts = append(r.opts, grpc.Header(&r.header))
	}
	if peerAddr {
		r.opts = append(r.opts, grpc.Peer(&r.peer))
	}
	return r
}

// adopt makes the header, trailer and peer of r, an attempt other than the
// owner whose outcome the call takes, the caller's and the owner's: trailer
// is r's trailer.
func (h *hedgedCall) adopt(r *hedgeReply, trailer metadata.MD) {
	*h.trailer = trailer
	for _, o := range h.callerOpts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = r.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = trailer
		case grpc.PeerCallOption:
			*o.PeerAddr = r.peer
		}
	}
}

// breakerClosed is the call's gate: a hedge starts only while the call's
// breaker is closed (or disabled), neither open nor half-open.
// It may be called from several goroutines at once.
func (h *hedgedCall) breakerClosed() bool {
	key := h.u.method
	if h.u.c.perTarget {
		key = h.u.cc.Target()
	}
	s := h.u.c.breakers.Get(key).State()
	return s == breaker.Closed || s == breaker.Disabled
}
