package breaker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustNewGroup(t *testing.T, cfg Config, maxKeys int) *Group {
	t.Helper()
	g, err := NewGroup(cfg, maxKeys)
	require.NoError(t, err)
	return g
}

// groupKeys returns the group's keys and breakers, as Range sees them.
func groupKeys(g *Group) map[string]*Breaker {
	m := map[string]*Breaker{}
	g.Range(func(k string, b *Breaker) bool {
		m[k] = b
		return true
	})
	return m
}

func TestGroupGet(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	cfg := Config{
		Name:                "ignored: each breaker is named by its key",
		ConsecutiveFailures: 1,
		OnStateChange: func(c StateChange) {
			mu.Lock()
			defer mu.Unlock()
			names = append(names, c.Name+":"+c.From.String()+">"+c.To.String())
		},
	}
	g := mustNewGroup(t, cfg, 10)
	assert.Zero(t, g.Len(), "keys are created lazily")
	assert.Empty(t, groupKeys(g))

	a := g.Get("a")
	require.NotNil(t, a)
	assert.Equal(t, 1, g.Len())
	assert.Same(t, a, g.Get("a"), "the same key returns the same breaker")
	b := g.Get("b")
	assert.NotSame(t, a, b)
	assert.Equal(t, 2, g.Len())
	assert.Equal(t, map[string]*Breaker{"a": a, "b": b}, groupKeys(g))
	assert.Equal(t, "a", a.cfg.Name)
	assert.Equal(t, "b", b.cfg.Name)

	run(t, a, 1, errBoom)
	assert.Equal(t, Open, a.State())
	assert.Equal(t, Closed, b.State(), "tripping one key leaves another alone")
	assert.Equal(t, 1, run(t, b, 1, nil))
	assert.Zero(t, run(t, g.Get("a"), 1, nil))

	b.ForceOpen()
	a.Reset()
	mu.Lock()
	assert.Equal(t, []string{"a:closed>open", "b:closed>forced-open", "a:open>closed"}, names)
	mu.Unlock()
	assert.Zero(t, g.Evictions())
}

func TestNewGroupValidates(t *testing.T) {
	for _, tc := range configErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			_, want := New(tc.cfg)
			require.Error(t, want)
			g, err := NewGroup(tc.cfg, 10)
			assert.Nil(t, g)
			assert.EqualError(t, err, want.Error(), "the same error as New")
		})
	}
	t.Run("negative maxKeys", func(t *testing.T) {
		g, err := NewGroup(Config{}, -1)
		assert.Nil(t, g)
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "breaker: "), err.Error())
		assert.Contains(t, err.Error(), "maxKeys")
		assert.Contains(t, err.Error(), "-1")
	})
	t.Run("zero maxKeys is DefaultGroupSize", func(t *testing.T) {
		g := mustNewGroup(t, Config{}, 0)
		for i := range DefaultGroupSize {
			g.Get(strconv.Itoa(i))
		}
		assert.Equal(t, DefaultGroupSize, g.Len())
		assert.Zero(t, g.Evictions())
		g.Get("one more")
		assert.Equal(t, DefaultGroupSize, g.Len())
		assert.Equal(t, uint64(1), g.Evictions())
	})
}

func TestGroupBound(t *testing.T) {
	t.Run("a flood of distinct keys", func(t *testing.T) {
		const maxKeys, keys = 100, 100_000
		g := mustNewGroup(t, Config{}, maxKeys)
		for i := range keys {
			require.NotNil(t, g.Get("key-"+strconv.Itoa(i)))
			if n := g.Len(); n > maxKeys {
				require.LessOrEqual(t, n, maxKeys, "after %d keys", i+1)
			}
		}
		assert.Equal(t, maxKeys, g.Len())
		assert.Equal(t, uint64(keys-maxKeys), g.Evictions())
		assert.Len(t, groupKeys(g), maxKeys)
	})
	t.Run("every breaker open", func(t *testing.T) {
		// No closed breaker to prefer: the bound still holds.
		g := mustNewGroup(t, Config{ConsecutiveFailures: 1}, 3)
		for _, k := range []string{"a", "b", "c"} {
			run(t, g.Get(k), 1, errBoom)
			require.Equal(t, Open, g.Get(k).State())
		}
		g.Get("d")
		assert.Equal(t, 3, g.Len())
		assert.Equal(t, uint64(1), g.Evictions())
		assert.Contains(t, groupKeys(g), "d")
		assert.Len(t, groupKeys(g), 3)
	})
}

// TestGroupEvictionKeepsTrippedBreakers: a breaker that is protecting a
// dependency (open, or forced open by an operator) outlives a flood of
// closed keys, and keeps its state: the flood cannot reset it.
func TestGroupEvictionKeepsTrippedBreakers(t *testing.T) {
	const maxKeys, others = 10, 1000
	g := mustNewGroup(t, Config{ConsecutiveFailures: 1}, maxKeys)
	down := g.Get("down")
	run(t, down, 1, errBoom)
	require.Equal(t, Open, down.State())
	forced := g.Get("forced")
	forced.ForceOpen()

	for i := range others {
		g.Get("other-" + strconv.Itoa(i))
		require.LessOrEqual(t, g.Len(), maxKeys)
	}
	keys := groupKeys(g)
	assert.Same(t, down, keys["down"], "the open breaker was kept")
	assert.Same(t, forced, keys["forced"], "the forced-open breaker was kept")
	assert.Same(t, down, g.Get("down"))
	assert.Equal(t, Open, g.Get("down").State())
	assert.Zero(t, run(t, g.Get("down"), 1, nil), "still rejecting")
	assert.Same(t, forced, g.Get("forced"))
	assert.Equal(t, ForcedOpen, g.Get("forced").State())
	assert.Equal(t, uint64(2+others-maxKeys), g.Evictions())
}

// TestGroupEvictionSecondChance follows evictLocked's clock sweep:
//
//  1. Keys a..j fill the group; each is marked used by its creation.
//  2. Key k needs a slot. The first pass finds only used keys and clears
//     every mark; the second pass evicts one of a..j (which one depends on
//     sync.Map's order). The other nine are now unmarked; k is marked.
//  3. All of the nine but one, y, are used (Get): marked again.
//  4. Key l needs a slot. The first pass clears the marks of the used keys
//     it meets and evicts the only unmarked closed key, y, wherever it sits
//     in the map's order: the recently used keys get their second chance.
func TestGroupEvictionSecondChance(t *testing.T) {
	g := mustNewGroup(t, Config{}, 10)
	first := map[string]*Breaker{}
	for c := 'a'; c <= 'j'; c++ {
		first[string(c)] = g.Get(string(c))
	}
	require.Equal(t, 10, g.Len())

	k := g.Get("k")
	require.Equal(t, uint64(1), g.Evictions())
	var survivors []string
	for key, b := range groupKeys(g) {
		if key != "k" {
			require.Same(t, first[key], b)
			survivors = append(survivors, key)
		}
	}
	require.Len(t, survivors, 9)
	slices.Sort(survivors)
	y := survivors[4]
	for _, key := range survivors {
		if key != y {
			require.Same(t, first[key], g.Get(key)) // used since the last pass
		}
	}

	g.Get("l")
	assert.Equal(t, uint64(2), g.Evictions())
	assert.Equal(t, 10, g.Len())
	keys := groupKeys(g)
	assert.NotContains(t, keys, y, "the key unused since the last pass is evicted")
	for _, key := range survivors {
		if key != y {
			assert.Same(t, first[key], keys[key], "recently used key %s survives", key)
		}
	}
	assert.Same(t, k, keys["k"], "a key created since the last pass survives")
	assert.Contains(t, keys, "l")
}

func TestGroupDo(t *testing.T) {
	g := mustNewGroup(t, Config{ConsecutiveFailures: 1}, 10)
	type ctxKey struct{}
	ctx := context.WithValue(t.Context(), ctxKey{}, "v")

	ran := 0
	err := g.Do(ctx, "db", func(ctx context.Context) error {
		ran++
		assert.Equal(t, "v", ctx.Value(ctxKey{}), "op gets the caller's context")
		return errBoom
	})
	assert.ErrorIs(t, err, errBoom, "Do returns op's error")
	assert.Equal(t, 1, ran)
	assert.Equal(t, Open, g.Get("db").State(), "the outcome was recorded on the key's breaker")

	err = g.Do(ctx, "db", func(context.Context) error { ran++; return nil })
	assert.ErrorIs(t, err, ErrOpen)
	assert.Equal(t, 1, ran, "an open breaker does not run op")

	assert.NoError(t, g.Do(ctx, "cache", func(context.Context) error { ran++; return nil }))
	assert.Equal(t, 2, ran, "another key is not affected")

	m := g.Get("db").Metrics()
	assert.Equal(t, uint64(1), m.Failures)
	assert.Equal(t, uint64(1), m.Rejections)
	assert.Equal(t, uint64(1), g.Get("cache").Metrics().Successes)
}

func TestGroupConcurrent(t *testing.T) {
	const (
		workers   = 8
		opsEach   = 600
		keys      = 200
		maxKeys   = 50
		failEvery = 7
	)
	g := mustNewGroup(t, Config{ConsecutiveFailures: 3}, maxKeys)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range opsEach {
				key := "k" + strconv.Itoa(rng.IntN(keys))
				switch rng.IntN(4) {
				case 0:
					if b := g.Get(key); b == nil {
						t.Error("Get returned nil")
						return
					}
				case 1:
					p, err := g.Get(key).Allow()
					if err == nil {
						p.Done(nil)
					}
				case 2:
					_ = g.Do(t.Context(), key, func(context.Context) error {
						if i%failEvery == 0 {
							return errBoom
						}
						return nil
					})
				default:
					if n := g.Len(); n > maxKeys {
						t.Errorf("Len %d above %d", n, maxKeys)
					}
					seen := 0
					g.Range(func(string, *Breaker) bool { seen++; return seen < 10 })
					_ = g.Evictions()
				}
			}
		})
	}
	wg.Wait()

	n := g.Len()
	assert.LessOrEqual(t, n, maxKeys)
	assert.Len(t, groupKeys(g), n, "Range visits exactly Len keys")
	assert.Positive(t, g.Evictions())
}

func TestGroupRangeStops(t *testing.T) {
	g := mustNewGroup(t, Config{}, 10)
	for i := range 5 {
		g.Get(fmt.Sprint("key", i))
	}
	for _, stopAfter := range []int{1, 3, 5} {
		visited := 0
		g.Range(func(key string, b *Breaker) bool {
			visited++
			assert.Equal(t, key, b.cfg.Name)
			return visited < stopAfter
		})
		assert.Equal(t, stopAfter, visited)
	}
	visited := 0
	g.Range(func(string, *Breaker) bool { visited++; return true })
	assert.Equal(t, 5, visited)
}
