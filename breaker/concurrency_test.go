package breaker

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentInvariants hammers one breaker from many goroutines while a
// driver makes the dependency fail and recover, so the breaker trips,
// half-opens and closes many times. It asserts the invariants that must hold
// under any interleaving:
//   - a half-open period never has more than HalfOpenProbes probes in flight;
//   - every transition is reported exactly once (the reported transitions
//     form consistent chains and match Metrics().Transitions);
//   - the counters add up to what the callers did.
func TestConcurrentInvariants(t *testing.T) {
	configs := []Config{
		{ConsecutiveFailures: 5, OpenDuration: 20 * time.Millisecond, HalfOpenProbes: 3, HalfOpenSuccesses: 4},
		{FailureRate: 0.5, CountWindow: 50, MinimumCalls: 20, OpenDuration: 20 * time.Millisecond, HalfOpenProbes: 2, OpenBackoff: 1.5, OpenJitter: 0.3},
		{FailureRate: 0.4, SlowCallRate: 0.5, SlowCallThreshold: 3 * time.Millisecond, TimeWindow: 50 * time.Millisecond, MinimumCalls: 20, OpenDuration: 10 * time.Millisecond, HalfOpenProbes: 4, HalfOpenSuccesses: 2},
	}
	for i, cfg := range configs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { hammer(t, cfg) })
		})
	}
}

func hammer(t *testing.T, cfg Config) {
	const workers, callsPerWorker = 16, 1500

	var (
		hookMu   sync.Mutex
		reported = map[[2]State]int{}
	)
	cfg.OnStateChange = func(c StateChange) {
		hookMu.Lock()
		reported[[2]State{c.From, c.To}]++
		hookMu.Unlock()
	}
	b := mustNew(t, cfg)

	var failing atomic.Bool
	stop := make(chan struct{})
	var driver sync.WaitGroup
	driver.Go(func() { // the dependency fails for 40ms out of every 100ms
		for {
			select {
			case <-stop:
				return
			case <-time.After(60 * time.Millisecond):
			}
			failing.Store(true)
			bubble.Sleep(40 * time.Millisecond)
			failing.Store(false)
		}
	})

	var (
		probesMu   sync.Mutex
		inFlight   = map[uint64]int{} // probes in flight per half-open generation
		maxProbes  int
		admitted   atomic.Uint64
		rejected   atomic.Uint64
		successes  atomic.Uint64
		failures   atomic.Uint64
		ignored    atomic.Uint64
		probeCalls atomic.Uint64
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range callsPerWorker {
				p, err := b.Allow()
				if err != nil {
					rejected.Add(1)
					bubble.Sleep(time.Millisecond)
					continue
				}
				admitted.Add(1)
				probe := stateOf(p.word) == HalfOpen
				if probe {
					probeCalls.Add(1)
					probesMu.Lock()
					g := genOf(p.word)
					inFlight[g]++
					maxProbes = max(maxProbes, inFlight[g])
					probesMu.Unlock()
				}
				bubble.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
				o := Success
				switch k := rng.IntN(100); {
				case k < 3:
					o = Ignore
				case failing.Load() && k < 90, k < 8:
					o = Failure
				}
				if probe {
					probesMu.Lock()
					inFlight[genOf(p.word)]--
					probesMu.Unlock()
				}
				p.Record(o)
				switch o {
				case Success:
					successes.Add(1)
				case Failure:
					failures.Add(1)
				default:
					ignored.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	driver.Wait()

	assert.LessOrEqual(t, maxProbes, b.cfg.HalfOpenProbes, "probes in flight in one half-open period")

	m := b.Metrics()
	assert.Equal(t, uint64(workers*callsPerWorker), m.Calls+m.Rejections, "every call is admitted or rejected")
	assert.Equal(t, admitted.Load(), m.Calls)
	assert.Equal(t, rejected.Load(), m.Rejections)
	assert.Equal(t, successes.Load(), m.Successes)
	assert.Equal(t, failures.Load(), m.Failures)
	assert.Equal(t, ignored.Load(), m.Ignored)

	hookMu.Lock()
	defer hookMu.Unlock()
	total := 0
	for _, n := range reported {
		total += n
	}
	assert.Equal(t, uint64(total), m.Transitions, "each transition reported once")
	opened := reported[[2]State{Closed, Open}] + reported[[2]State{HalfOpen, Open}]
	halfOpened := reported[[2]State{Open, HalfOpen}]
	left := reported[[2]State{HalfOpen, Closed}] + reported[[2]State{HalfOpen, Open}]
	// The transitions made so far end in the state word's state. State()
	// may read half-open for an open period that has passed, a transition
	// no call has made yet.
	st := stateOf(b.state.Load())
	assert.Equal(t, opened, halfOpened+boolInt(st == Open), "every open period but the current one ended in half-open")
	assert.Equal(t, halfOpened, left+boolInt(st == HalfOpen), "every half-open period but the current one ended")
	require.Equal(t, total, opened+halfOpened+reported[[2]State{HalfOpen, Closed}], "only the three rule-driven transitions")

	// The scenario must have exercised the breaker, or the test proves nothing.
	assert.GreaterOrEqual(t, reported[[2]State{Closed, Open}], 3, "tripped repeatedly: %v", reported)
	assert.GreaterOrEqual(t, reported[[2]State{HalfOpen, Closed}], 3, "recovered repeatedly: %v", reported)
	assert.Greater(t, probeCalls.Load(), uint64(0))
	t.Logf("transitions %v, calls %d, rejections %d, max probes %d", reported, m.Calls, m.Rejections, maxProbes)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestConcurrentOverrides races operator overrides against calls: nothing
// deadlocks or panics, and the breaker ends in the state last set.
func TestConcurrentOverrides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{FailureRate: 0.5, CountWindow: 20, MinimumCalls: 5, OpenDuration: time.Millisecond})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 2000 {
					if p, err := b.Allow(); err == nil {
						if (i+w)%3 == 0 {
							p.Done(errBoom)
						} else {
							p.Done(nil)
						}
					}
					if i%50 == 0 {
						bubble.Sleep(time.Millisecond)
					}
				}
			})
		}
		wg.Go(func() {
			for i := range 300 {
				[]func(){b.ForceOpen, b.Disable, b.Reset}[i%3]()
				bubble.Sleep(100 * time.Microsecond)
			}
		})
		wg.Wait()
		b.ForceOpen()
		assert.Equal(t, ForcedOpen, b.State())
		m := b.Metrics()
		assert.Equal(t, uint64(8*2000), m.Calls+m.Rejections)
	})
}
