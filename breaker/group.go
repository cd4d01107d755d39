package breaker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall/internal/obs"
)

// DefaultGroupSize is the number of keys a [Group] holds when NewGroup is
// given 0.
const DefaultGroupSize = 1024

// A Group is a set of breakers, one per key (a host, a method, a tenant),
// each created on first use from one Config and named by its key. It holds at
// most a fixed number of keys: when a new key arrives at the bound, the group
// forgets an old key's breaker, preferring one that is closed and has not been
// used since the last eviction pass (a second-chance "clock" sweep), so
// breakers that currently protect a dependency are kept longest. A flood of
// distinct keys therefore cannot grow memory past the bound.
//
// Looking up an existing key takes no lock. A Group is safe for concurrent
// use by multiple goroutines.
type Group struct {
	cfg       Config // validated, defaults applied
	max       int
	m         sync.Map // string → *groupEntry
	mu        sync.Mutex
	n         int           // keys in m; guarded by mu
	ring      []*groupEntry // the entries of m, for the eviction sweep; guarded by mu
	hand      int           // the sweep's position in ring; guarded by mu
	evictions atomic.Uint64
	slot      obs.Slot // the registry that named this group, if any
}

type groupEntry struct {
	key  string
	b    *Breaker
	used atomic.Bool // set on lookup, cleared by an eviction pass
}

// NewGroup returns an empty group whose breakers are configured by cfg (each
// named by its key), holding at most maxKeys keys (0 means
// [DefaultGroupSize]). It returns an error naming the first invalid field of
// cfg, or a negative maxKeys.
func NewGroup(cfg Config, maxKeys int) (*Group, error) {
	if maxKeys < 0 {
		return nil, fmt.Errorf("breaker: group maxKeys %d is negative", maxKeys)
	}
	if maxKeys == 0 {
		maxKeys = DefaultGroupSize
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Group{cfg: cfg, max: maxKeys}, nil
}

// Get returns the breaker for key, creating it if needed.
func (g *Group) Get(key string) *Breaker {
	if v, ok := g.m.Load(key); ok {
		e := v.(*groupEntry)
		if !e.used.Load() {
			e.used.Store(true)
		}
		return e.b
	}
	return g.create(key)
}

func (g *Group) create(key string) *Breaker {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.m.Load(key); ok {
		return v.(*groupEntry).b
	}
	slot := -1 // where the new entry goes in the ring
	if g.n >= g.max {
		slot = g.evictLocked()
	}
	cfg := g.cfg
	cfg.Name = key
	b, err := New(cfg)
	if err != nil {
		// cfg was validated by NewGroup and only the name changed.
		panic("breaker: group config became invalid: " + err.Error())
	}
	b.group = &g.slot
	e := &groupEntry{key: key, b: b}
	e.used.Store(true)
	g.m.Store(key, e)
	g.n++
	if slot >= 0 {
		g.ring[slot] = e
	} else {
		g.ring = append(g.ring, e)
	}
	return b
}

// evictLocked forgets one key, and returns its place in the ring for the
// entry that replaces it. It sweeps the ring from where the last sweep
// stopped (a second-chance "clock"): a used entry loses its mark and is
// passed over, as is a breaker that is not closed; the first closed
// breaker not used since the sweep last passed it goes. After two turns
// with none (one, if no breaker is closed), the breaker under the hand
// goes. It never ranges over the
// map, whose Range would make the next new key copy it (sync.Map promotes
// its dirty map on Range): a sweep costs the entries it passes, amortised
// O(1) per new key when the breakers are closed, and one turn (a load per
// entry) when none is.
func (g *Group) evictLocked() int {
	n := len(g.ring)
	i := g.hand % n
	sawClosed := false
	for step := range 2 * n {
		if step == n && !sawClosed {
			break // no closed breaker: a second turn would find none either
		}
		e := g.ring[i]
		// The state word, not State: an open breaker whose open period has
		// passed is no more a candidate than a half-open one, and reading
		// the clock for each would cost more than the rest of the sweep.
		closed := stateOf(e.b.state.Load()) == Closed
		sawClosed = sawClosed || closed
		if e.used.Load() {
			e.used.Store(false) // a plain store: a swap per entry would cost more
		} else if closed {
			break
		}
		i = (i + 1) % n
	}
	g.hand = (i + 1) % n
	g.m.Delete(g.ring[i].key)
	g.n--
	g.evictions.Add(1)
	return i
}

// Do runs op through the breaker for key; see [Breaker.Do].
func (g *Group) Do(ctx context.Context, key string, op func(context.Context) error) error {
	return g.Get(key).Do(ctx, op)
}

// Len returns the number of keys the group holds.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Evictions returns how many keys the group has forgotten to stay within its
// bound.
func (g *Group) Evictions() uint64 { return g.evictions.Load() }

// Range calls f for each key and its breaker until f returns false, as
// sync.Map.Range does: keys added or evicted meanwhile may or may not be
// seen.
func (g *Group) Range(f func(key string, b *Breaker) bool) {
	g.m.Range(func(k, v any) bool { return f(k.(string), v.(*groupEntry).b) })
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (c *StateCounts) UnmarshalJSON(b []byte) error {
	var counts map[string]int
	if err := json.Unmarshal(b, &counts); err != nil {
		return err
	}
	*c = StateCounts{}
	for k, n := range counts {
		var s State
		if err := s.UnmarshalText([]byte(k)); err != nil {
			return err
		}
		c[s] = n
	}
	return nil
}

// Lookup returns the breaker of key, if the group holds one, without
// creating it (as Get would) or marking it used.
func (g *Group) Lookup(key string) (*Breaker, bool) {
	if v, ok := g.m.Load(key); ok {
		return v.(*groupEntry).b, true
	}
	return nil, false
}

// Registration is how package registry names the group and hears of its
// breakers' transitions. Its result is opaque outside this module.
func (g *Group) Registration() *obs.Slot { return &g.slot }

// GroupMetrics is a snapshot of a group: how many breakers it holds in each
// state, and its breakers' counters summed. The sums cover the breakers the
// group holds now, so they fall when it forgets a key: read them as gauges
// of the current set, not as counters since the group was made.
type GroupMetrics struct {
	Keys      int    `json:"keys"`      // breakers held ([Group.Len])
	Evictions uint64 `json:"evictions"` // keys forgotten to make room ([Group.Evictions])
	// States counts the breakers by state, as [Breaker.State] reports it
	// (in JSON, an object keyed by state name).
	States StateCounts `json:"states"`
	// Total sums the held breakers' Metrics; its State and ProbeIn are
	// zero (Closed and 0) and mean nothing.
	Total Metrics `json:"total"`
	// Tripped lists up to MaxTripped of the breakers that are not closed,
	// by key, so that an operator sees which members are open: those with
	// no particular order.
	Tripped []Member `json:"tripped,omitempty"`
}

// MaxTripped is the most members GroupMetrics.Tripped lists.
const MaxTripped = 32

// A Member is a breaker of a group that is not closed.
type Member struct {
	Key     string        `json:"key"`
	State   State         `json:"state"`
	ProbeIn time.Duration `json:"probeIn"` // see Metrics.ProbeIn
}

// StateCounts counts breakers by state.
type StateCounts [numStates]int

// MarshalJSON encodes the counts as an object keyed by state name.
func (c StateCounts) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, n := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, stateNames[i]...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, '}'), nil
}

// Metrics returns a snapshot of the group. It visits every breaker the
// group holds (as Range does) without blocking calls.
func (g *Group) Metrics() GroupMetrics {
	m := GroupMetrics{Evictions: g.evictions.Load()}
	g.m.Range(func(k, v any) bool {
		bm := v.(*groupEntry).b.Metrics()
		if bm.State != Closed && len(m.Tripped) < MaxTripped {
			m.Tripped = append(m.Tripped, Member{Key: k.(string), State: bm.State, ProbeIn: bm.ProbeIn})
		}
		m.Keys++
		m.States[bm.State]++
		t := &m.Total
		t.Calls += bm.Calls
		t.Successes += bm.Successes
		t.Failures += bm.Failures
		t.SlowCalls += bm.SlowCalls
		t.Ignored += bm.Ignored
		t.Rejections += bm.Rejections
		t.Transitions += bm.Transitions
		for i := range bm.Moves {
			for j, n := range bm.Moves[i] {
				t.Moves[i][j] += n
			}
		}
		return true
	})
	return m
}
