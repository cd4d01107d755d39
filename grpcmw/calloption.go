package grpcmw

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// callOption is a per-call override, passed with the call's grpc options.
type callOption struct {
	grpc.EmptyCallOption
	maxAttempts int
	codes       *codeSet
	noHedge     bool
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

// CallNoHedge turns hedging (WithHedge) off for one call: a method that is
// not idempotent, say, on a connection whose other methods are hedged.
func CallNoHedge() grpc.CallOption {
	return callOption{noHedge: true}
}

// call is the settings of one call.
type call struct {
	maxAttempts int // 0: the client's
	codes       codeSet
	noHedge     bool
	trailer     *metadata.MD // the caller's grpc.Trailer, if any
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
			s.noHedge = s.noHedge || co.noHedge
		} else if t, ok := o.(grpc.TrailerCallOption); ok {
			s.trailer = t.TrailerAddr
		}
	}
	return s
}
