package httpmw

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/fault"
)

// FaultAbortHeader is the request header that asks a Server built with
// WithFaultInjection and FaultResponse.Headers for a fault, as Envoy's
// x-envoy-fault-abort-request does: its value is a status from 400 to 599,
// or "abort" for an aborted connection. It has no effect unless both the
// option allows it and the Injector is enabled: a header alone can never
// turn faults on.
const FaultAbortHeader = "X-Seawall-Fault-Abort"

// FaultResponse says how a Server built with WithFaultInjection answers a
// request its Injector fails.
type FaultResponse struct {
	// Status is the status of the answer, from 400 to 599; default 503
	// (Service Unavailable).
	Status int
	// RetryAfter, if positive, is sent as Retry-After (and
	// RetryAfterMsHeader), unless the Injector's error carries a hint of
	// its own. Default none: a 503 without Retry-After is a failure to a
	// client's breaker and retry, which is what a game day rehearses; with
	// one, it is an overload refusal, which a breaker does not count.
	RetryAfter time.Duration
	// Abort, if true, aborts the connection in place of an answer, as a
	// crashed dependency would: an HTTP/1 connection is hijacked and closed,
	// an HTTP/2 stream is reset (the handler panics with
	// http.ErrAbortHandler, which net/http does not log). The client sees
	// an error, not a status.
	Abort bool
	// Headers, if true, honours FaultAbortHeader while the Injector is
	// enabled: a request that carries it is failed as it asks, whatever the
	// Injector's rates and Select. Such faults are not counted in the
	// Injector's Metrics. Default false: the header is ignored.
	Headers bool
}

// WithFaultInjection injects the faults of inj into the requests of the
// Server, for game days and tests: while inj is enabled, a request it
// delays waits before its handler runs (and is answered 504, or
// StatusClientClosedRequest, if its context ends first: WithDeadline's
// propagated deadline applies), and a request it fails is answered as resp
// says, without running the handler. While inj is disabled, a request pays
// one atomic load. Fault injection comes after WithDeadline and before the
// rate limits and load shedding, so that it stands for the whole service
// failing. Faulty answers are written by the Server's RejectFunc, with
// Rejection.Err the Injector's error (fault.ErrInjected by default).
//
// It is an error if inj is nil, resp.Status is neither 0 nor from 400 to
// 599, or resp.RetryAfter is negative.
func WithFaultInjection(inj *fault.Injector, resp FaultResponse) ServerOption {
	return func(s *Server) error {
		if inj == nil {
			return errors.New("httpmw: WithFaultInjection: nil injector")
		}
		if resp.Status == 0 {
			resp.Status = http.StatusServiceUnavailable
		}
		if resp.Status < 400 || resp.Status > 599 {
			return fmt.Errorf("httpmw: WithFaultInjection: Status %d out of range [400,599]", resp.Status)
		}
		if resp.RetryAfter < 0 {
			return fmt.Errorf("httpmw: WithFaultInjection: RetryAfter %v is negative", resp.RetryAfter)
		}
		s.fault, s.faultResp = inj, resp
		return nil
	}
}

// headerFault parses a FaultAbortHeader value: a status from 400 to 599,
// or "abort" (status 0, abort true).
func headerFault(v string) (status int, abort, ok bool) {
	if v == "abort" {
		return 0, true, true
	}
	if len(v) != 3 {
		return 0, false, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 400 || n > 599 {
		return 0, false, false
	}
	return n, false, true
}

func (s *Server) faultHandler(next http.Handler) http.Handler {
	inj, resp := s.fault, s.faultResp
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !inj.Enabled() {
			next.ServeHTTP(w, r)
			return
		}
		if resp.Headers {
			if vs := r.Header[FaultAbortHeader]; len(vs) == 1 {
				if status, abort, ok := headerFault(vs[0]); ok {
					if abort {
						abortConn(w)
						return
					}
					s.reject(w, r, Rejection{Status: status, Err: fault.ErrInjected})
					return
				}
			}
		}
		ctx := r.Context()
		err := inj.Apply(ctx)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		if cerr := ctx.Err(); cerr != nil && err == cerr {
			s.rejectErr(w, r, contextStatus(err), err)
			return
		}
		if resp.Abort {
			abortConn(w)
			return
		}
		after, ok := seawall.RetryAfter(err)
		if !ok {
			after = resp.RetryAfter
		}
		s.reject(w, r, Rejection{Status: resp.Status, RetryAfter: after, Err: err})
	})
}

// abortConn aborts the connection of a request without an answer: it
// hijacks an HTTP/1 connection and closes it, and otherwise (HTTP/2, or a
// ResponseWriter that cannot be hijacked) panics with http.ErrAbortHandler,
// with which net/http resets the stream quietly.
func abortConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}
