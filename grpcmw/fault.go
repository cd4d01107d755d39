package grpcmw

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/fault"
)

// WithFaultInjection injects the faults of inj into the calls of the
// server, for game days and tests: while inj is enabled, a call it delays
// waits before its handler runs (and ends with DEADLINE_EXCEEDED or
// CANCELED if its context ends first: the client's deadline applies), and
// a call it fails ends with code, without running the handler, and with a
// pushback trailer only if the Injector's error carries a hint (a fault is
// a failure to the client, not a refusal, unless configured as one). While
// inj is disabled, a call pays one atomic load. Fault injection comes
// after the check of the call's context and before the rate limits and
// load shedding. No metadata can turn faults on.
//
// It is an error if inj is nil, or code is OK or not a gRPC code
// (UNAVAILABLE, INTERNAL and DEADLINE_EXCEEDED are the usual choices).
func WithFaultInjection(inj *fault.Injector, code codes.Code) ServerOption {
	return func(s *Server) error {
		if inj == nil {
			return errors.New("grpcmw: WithFaultInjection with a nil injector")
		}
		if code == codes.OK || code > codes.Unauthenticated {
			return fmt.Errorf("grpcmw: WithFaultInjection code %v is not an error code", code)
		}
		s.fault, s.faultCode = inj, code
		return nil
	}
}

// injectFault applies the server's fault Injector to a call, and returns
// the rejection of a call it fails, or nil.
func (s *Server) injectFault(ctx context.Context) *rejection {
	err := s.fault.Apply(ctx)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && err == cerr {
		return &rejection{err: status.FromContextError(err).Err()}
	}
	r := &rejection{}
	msg := "grpcmw: injected fault"
	if d, ok := seawall.RetryAfter(err); ok {
		r.pushback, r.has = d, true
		msg += "; retry in " + waitText(d)
	}
	r.err = status.Error(s.faultCode, msg)
	return r
}
