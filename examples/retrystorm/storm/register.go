package storm

import (
	"fmt"

	"github.com/seawall-go/seawall/registry"
)

// registrar registers the policies of one strategy's run in
// Scenario.Registry, named after the strategy's letter ("e.caller-3.breaker",
// "f.service.limiter"), and unregisters them when the run ends. Without a
// registry it does nothing.
type registrar struct {
	reg    *registry.Registry
	prefix string
	names  []string
	err    error // the first registration's error
}

func (s Scenario) registrar(st Strategy) *registrar {
	return &registrar{reg: s.Registry, prefix: st.Letter() + "."}
}

// add registers the policy p (not a nil pointer) under the strategy's
// prefix and name.
func (g *registrar) add(name string, p any) {
	if g.reg == nil || g.err != nil {
		return
	}
	if err := g.reg.Register(g.prefix+name, p); err != nil {
		g.err = fmt.Errorf("storm: registering %s%s: %w", g.prefix, name, err)
		return
	}
	g.names = append(g.names, g.prefix+name)
}

// close unregisters what add registered.
func (g *registrar) close() {
	for _, n := range g.names {
		g.reg.Unregister(n)
	}
	g.names = nil
}
