package grpcmw

import (
	"fmt"

	"github.com/seawall-go/seawall/registry"
)

// WithRegistry registers the client's policies in reg, under name and
// a suffix, when NewClient builds it: the retry it makes (with WithRetry) as
// name+".retry" (and its budget as name+".retry.budget"), the breaker group
// of WithBreakers as name+".breakers", the throttle of WithThrottle as
// name+".throttle". A policy registered in reg already (say, a group shared
// with another client) keeps its name; one registered in another
// registry makes NewClient fail. It is an error if reg is nil or name
// is not a valid name ([registry.ValidName]).
func WithRegistry(reg *registry.Registry, name string) ClientOption {
	return func(o *clientOptions) error {
		if err := checkRegistry(reg, name); err != nil {
			return err
		}
		o.reg, o.regName = reg, name
		return nil
	}
}

// WithServerRegistry registers the server's policies in reg, under name and
// a suffix, when NewServer builds it: the limiter of WithRateLimit as
// name+".ratelimit" (if it is a *ratelimit.Limiter or *ratelimit.Keyed), the
// keyed limiter of WithKeyedRateLimit as name+".keyed_ratelimit", the
// bulkhead of WithLoadShed as name+".load_shed", the adaptive limiter of
// WithAdaptiveLimit as name+".adaptive", the injector of WithFaultInjection
// as name+".fault". As for WithRegistry, a policy
// registered in reg already keeps its name, one registered elsewhere makes
// NewServer fail, and reg must not be nil nor name invalid.
func WithServerRegistry(reg *registry.Registry, name string) ServerOption {
	return func(s *Server) error {
		if err := checkRegistry(reg, name); err != nil {
			return err
		}
		s.reg, s.regName = reg, name
		return nil
	}
}

func checkRegistry(reg *registry.Registry, name string) error {
	if reg == nil {
		return fmt.Errorf("grpcmw: WithRegistry(nil, %q)", name)
	}
	if err := registry.ValidName(name); err != nil {
		return fmt.Errorf("grpcmw: WithRegistry: %w", err)
	}
	return nil
}

// policies returns the client's policies, named under name.
func (t *Client) policies(name string) []registry.Policy {
	return registry.Under(name, registry.Part{Suffix: ".retry", Policy: t.retry},
		registry.Part{Suffix: ".breakers", Policy: t.breakers}, registry.Part{Suffix: ".throttle", Policy: t.throttle},
		registry.Part{Suffix: ".hedge", Policy: t.hedge})
}

// policies returns the server's policies, named under s.regName.
func (s *Server) policies() []registry.Policy {
	return registry.Under(s.regName, registry.Part{Suffix: ".ratelimit", Policy: s.limiter},
		registry.Part{Suffix: ".keyed_ratelimit", Policy: s.keyed}, registry.Part{Suffix: ".load_shed", Policy: s.bulkhead},
		registry.Part{Suffix: ".adaptive", Policy: s.adaptive}, registry.Part{Suffix: ".fault", Policy: s.fault})
}
