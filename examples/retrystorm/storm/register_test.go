package storm

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/registry"
)

// TestRegistry checks that a run with a Registry shows its policies there
// while it runs, under the strategy's letter, and takes them away at the
// end: what -status of the command serves.
func TestRegistry(t *testing.T) {
	for _, tc := range []struct {
		name string
		http bool
		st   Strategy
		want []string // the names of caller 0 and of the service
	}{
		{"e in process", false, Breaker, []string{"e.caller-0.breaker", "e.caller-0.retry", "e.caller-0.retry.budget"}},
		{"f in process", false, ServerSide, []string{"f.caller-0.breaker", "f.caller-0.retry", "f.caller-0.retry.budget", "f.service.bulkhead", "f.service.limiter"}},
		{"g in process", false, Adaptive, []string{"g.caller-0.breaker", "g.caller-0.retry", "g.caller-0.retry.budget", "g.caller-0.throttle", "g.service.adaptive"}},
		{"g over HTTP", true, Adaptive, []string{"g.caller-0.breakers", "g.caller-0.retry", "g.caller-0.retry.budget", "g.caller-0.throttle", "g.service.adaptive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg, err := registry.New()
				require.NoError(t, err)
				s := Default()
				s.Callers, s.Rate = 2, 100
				s.TriggerAt, s.TriggerFor, s.Length = time.Second, time.Second, 2*time.Second
				if tc.http {
					s = overHTTP(s)
				}
				s.Registry = reg
				done := make(chan error, 1)
				go func() {
					_, err := RunStrategy(t.Context(), s, tc.st)
					done <- err
				}()
				bubble.Sleep(time.Second) // virtual time: halfway through the run
				var names []string
				for _, p := range reg.Snapshot().Policies {
					if strings.HasPrefix(p.Name, tc.st.Letter()+".caller-0.") || strings.Contains(p.Name, ".service.") {
						names = append(names, p.Name)
					}
				}
				assert.Equal(t, tc.want, names)
				require.NoError(t, <-done)
				assert.Zero(t, reg.Len(), "the run unregisters its policies")
			})
		})
	}
}
