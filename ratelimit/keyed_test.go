package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// remembered reports whether k holds key.
func remembered(k *Keyed, key string) bool {
	h := maphash.String(k.seed, key)
	return k.shards[h&k.mask].tab.Load().find(h, key) != nil
}

func mustNewKeyed(t testing.TB, cfg KeyedConfig) *Keyed {
	t.Helper()
	k, err := NewKeyed(cfg)
	require.NoError(t, err)
	return k
}

// TestKeyedIndependence: each key has its own bucket; emptying one leaves
// the others full.
func TestKeyedIndependence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 2, Burst: 3}})
		for range 3 {
			assert.True(t, k.Allow("a"))
		}
		assert.False(t, k.Allow("a"))
		for range 3 {
			assert.True(t, k.Allow("b"), "b is untouched by a")
		}
		assert.False(t, k.Allow("b"))
		assert.NoError(t, k.Try("c", 3))

		err := k.Try("a", 1)
		assert.ErrorIs(t, err, ErrLimited)
		assert.ErrorIs(t, err, seawall.ErrRejected)
		hint, ok := seawall.RetryAfter(err)
		require.True(t, ok)
		assert.Equal(t, 500*time.Millisecond, hint)
		bubble.Sleep(hint - 1)
		assert.False(t, k.Allow("a"))
		bubble.Sleep(1)
		assert.True(t, k.Allow("a"))

		err = k.Try("a", 4)
		assert.NotErrorIs(t, err, ErrLimited, "more than the burst")
		assert.NoError(t, k.Try("a", 0))
		assert.Equal(t, 3, k.Len())
		assert.Equal(t, Metrics{Allowed: 9, Limited: 5}, k.Metrics())
	})
}

// TestKeyedMatchesLimiter: a key behaves exactly as its own Limiter would,
// step by step, through evictions while it is idle. With MaxKeys 1, another
// key arriving after the key's bucket has refilled (500ms) evicts it.
func TestKeyedMatchesLimiter(t *testing.T) {
	for _, maxKeys := range []int{1, 1000} {
		t.Run(fmt.Sprint("MaxKeys=", maxKeys), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{Rate: 4, Burst: 2} // refills fully in 500ms
				k := mustNewKeyed(t, KeyedConfig{Config: cfg, MaxKeys: maxKeys})
				ref := mustNew(t, cfg)
				evicted := 0
				for i := range 400 {
					bubble.Sleep(time.Duration((i*37)%8) * 50 * time.Millisecond)
					if i%3 == 0 { // the key idles, and another key arrives
						bubble.Sleep(500 * time.Millisecond)
						k.Allow("other-" + strconv.Itoa(i))
						if !remembered(k, "key") {
							evicted++
						}
					}
					n := 1 + i%2
					want, got := ref.Try(n), k.Try("key", n)
					require.Equal(t, want == nil, got == nil, "step %d", i)
					if want != nil {
						wh, _ := seawall.RetryAfter(want)
						gh, _ := seawall.RetryAfter(got)
						require.Equal(t, wh, gh, "step %d: the hints", i)
					}
					require.LessOrEqual(t, k.Len(), maxKeys)
				}
				if maxKeys == 1 {
					assert.Equal(t, 134, evicted, "the key was evicted at every arrival")
				}
			})
		})
	}
}

// TestKeyedIdleEvictionPreservesBehaviour: a key idle for longer than its
// bucket takes to refill is forgotten, and when it returns it is granted
// exactly what it would have been had it been remembered: a full bucket.
func TestKeyedIdleEvictionPreservesBehaviour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1, Burst: 5}, MaxKeys: 100})
		require.NoError(t, k.Try("idle", 5))
		require.NoError(t, k.Try("busy", 5))
		bubble.Sleep(4 * time.Second)
		assert.Zero(t, k.Prune(), "neither bucket has refilled: nothing is idle")
		assert.NoError(t, k.Try("busy", 1))
		bubble.Sleep(time.Second) // idle's bucket is full, busy's is not
		assert.Equal(t, 1, k.Prune())
		assert.Equal(t, 1, k.Len())
		assert.NoError(t, k.Try("idle", 5), "a forgotten key has a full bucket, as it would have had")
		assert.False(t, k.Allow("idle"))
		assert.NoError(t, k.Try("busy", 4), "busy kept its state")
		assert.False(t, k.Allow("busy"))
	})
}

// TestKeyedFullEvictsIdleFirst: when the keys fill MaxKeys, room is made by
// dropping idle keys; active keys are kept.
func TestKeyedFullEvictsIdleFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxKeys = 64 // 4 shards of 16
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1, Burst: 1}, MaxKeys: maxKeys})
		for i := range maxKeys / 2 {
			require.True(t, k.Allow("old-"+strconv.Itoa(i)))
		}
		bubble.Sleep(time.Second) // the old keys are idle
		for i := range 10 * maxKeys {
			k.Allow("new-" + strconv.Itoa(i))
			require.LessOrEqual(t, k.Len(), maxKeys)
		}
		for i := range maxKeys / 2 {
			assert.True(t, k.Allow("old-"+strconv.Itoa(i)), "returning idle keys are full")
		}
	})
}

// TestKeyedFullOfActiveKeys: when a shard is full of active keys, a new key
// makes Keyed forget one of them (the memory bound holds); the forgotten key
// starts over with a full bucket, and the others keep their state.
func TestKeyedFullOfActiveKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxKeys = 16 // one shard
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1, Burst: 1}, MaxKeys: maxKeys})
		for i := range maxKeys {
			require.True(t, k.Allow(strconv.Itoa(i)))
		}
		require.True(t, k.Allow("new"))
		assert.Equal(t, maxKeys, k.Len())
		var forgotten []string
		for i := range maxKeys {
			if !remembered(k, strconv.Itoa(i)) {
				forgotten = append(forgotten, strconv.Itoa(i))
			}
		}
		require.Len(t, forgotten, 1)
		assert.False(t, k.Allow("new"), "the new key was remembered")
		assert.True(t, k.Allow(forgotten[0]), "the forgotten key has a full bucket")
	})
}

// TestKeyedMemoryBound floods a Keyed with a million distinct keys: it
// never remembers more than MaxKeys, and its memory stays proportional to
// MaxKeys. It reports the bytes per remembered key, for keys of 13 bytes
// ("client-123456") and of 21 bytes (an IPv6 address's length, say): a
// key's own bytes are part of what it costs.
func TestKeyedMemoryBound(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		max    float64 // bytes per key kept
	}{
		{"client-", 120},         // 13-byte keys
		{"tenant-0000000-", 160}, // 21-byte keys
	} {
		t.Run(fmt.Sprintf("%dB keys", len(tc.prefix)+6), func(t *testing.T) {
			testKeyedMemoryBound(t, tc.prefix, tc.max)
		})
	}
}

func testKeyedMemoryBound(t *testing.T, prefix string, maxPerKey float64) {
	// A million keys, 100 × MaxKeys; under -race (35 s for one goroutine
	// that has no race to find) and -short, 100 000, still 10 × MaxKeys:
	// the README's suite runs this package without -race as well.
	distinct := 1_000_000
	if testing.Short() || raceEnabled {
		distinct = 100_000
	}
	const maxKeys = 10_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1, Burst: 1}, MaxKeys: maxKeys})
	buf := make([]byte, 0, 32)
	for i := range distinct {
		// prefix and 6 digits: 1_000_000+i without its leading 1.
		buf = strconv.AppendInt(append(buf[:0], prefix...), int64(1_000_000+i), 10)
		buf = append(buf[:len(prefix)], buf[len(prefix)+1:]...)
		if !k.Allow(string(buf)) {
			t.Fatalf("key %d refused: a new key has a full bucket", i)
		}
		if i%100_000 == 0 {
			require.LessOrEqual(t, k.Len(), maxKeys)
		}
	}
	n := k.Len()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(k)

	assert.LessOrEqual(t, n, maxKeys)
	assert.Greater(t, n, maxKeys*9/10, "the bound is used, not undershot")
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	perKey := float64(heap) / float64(n)
	t.Logf("%d distinct keys, MaxKeys %d: %d keys kept, heap %d B, %.1f B per key (key %q, %d B)",
		distinct, maxKeys, n, heap, perKey, buf, len(buf))
	// A key costs its entry (64 B: TAT, key header, hash, and the key's
	// bytes when they fit in 28) and its table slot (8 B at a load factor
	// between 3/8 and 3/4): about 80 B; more than maxPerKey would mean a
	// leak.
	assert.Less(t, perKey, maxPerKey)
}

// TestKeyedConcurrent hammers a few keys from many goroutines: each key is
// granted no more than its own bucket allows over the period.
func TestKeyedConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			workers, keys = 16, 4
			rate, burst   = 100.0, 5
			period        = time.Second
		)
		// MaxKeys well above the keys active at once (the flood's keys
		// go idle 10ms after their arrival), as it should be sized.
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: rate, Burst: burst}, MaxKeys: 1000})
		var admitted [keys]atomic.Int64
		end := time.Now().Add(period)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := 0; !time.Now().After(end); i++ {
					key := (w + i) % keys
					if k.Allow("k" + strconv.Itoa(key)) {
						admitted[key].Add(1)
					}
					bubble.Sleep(time.Duration(1+(w+i)%3) * time.Millisecond)
				}
			})
		}
		// Meanwhile a flood of other keys fills the shards, forcing evictions
		// of idle keys.
		wg.Go(func() {
			for i := 0; !time.Now().After(end); i++ {
				k.Allow("flood-" + strconv.Itoa(i))
				if i%50 == 0 {
					k.Prune()
					bubble.Sleep(time.Millisecond)
				}
			}
		})
		wg.Wait()
		limit := int64(rate*period.Seconds()) + burst
		for key := range keys {
			assert.LessOrEqual(t, admitted[key].Load(), limit, "key %d", key)
			assert.GreaterOrEqual(t, admitted[key].Load(), limit-2, "key %d", key)
		}
	})
}

func TestKeyedInfiniteRate(t *testing.T) {
	k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: math.Inf(1)}})
	for i := range 1000 {
		assert.True(t, k.Allow(strconv.Itoa(i%3)))
	}
	assert.NoError(t, k.Try("x", 1_000_000))
	assert.Zero(t, k.Len(), "no key is remembered")
	assert.True(t, math.IsInf(k.Rate(), 1))
}

func TestKeyedAllowExistingKeyAllocatesNothing(t *testing.T) {
	k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1e9, Burst: 1e9}})
	key := "tenant-1"
	k.Allow(key)
	assert.Zero(t, testing.AllocsPerRun(100, func() { k.Allow(key) }))
	assert.Equal(t, 1e9, k.Rate())
	assert.Equal(t, int(1e9), k.Burst())
}

func TestKeyedShards(t *testing.T) {
	for _, tc := range []struct{ maxKeys, shards, per int }{
		{1, 1, 1}, {3, 1, 3}, {31, 1, 31}, {32, 2, 16}, {64, 4, 16}, {100, 4, 25},
		{1024, 64, 16}, {10_000, 64, 156}, {0, 64, 156},
	} {
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1}, MaxKeys: tc.maxKeys})
		assert.Len(t, k.shards, tc.shards, "MaxKeys %d", tc.maxKeys)
		assert.Equal(t, tc.per, k.per, "MaxKeys %d", tc.maxKeys)
	}
}

// TestKeyedLayout checks, at real addresses, the cache-line layout the hot
// path relies on (see Keyed, keyShard, entry, alignedSlots): what one
// goroutine writes for its key shares no 64-byte line with data another
// goroutine reads or writes for another key.
func TestKeyedLayout(t *testing.T) {
	line := func(p unsafe.Pointer) uintptr { return uintptr(p) / 64 }
	for _, maxKeys := range []int{1, 64, 1000, 100_000} {
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1e9, Burst: 1e9}, MaxKeys: maxKeys})
		assert.Zero(t, uintptr(unsafe.Pointer(k))%64, "Keyed starts a line")
		assert.Zero(t, unsafe.Sizeof(*k)%64, "Keyed fills its lines")
		// Each shard's data is on lines of its own.
		for i := 1; i < len(k.shards); i++ {
			prevEnd := unsafe.Add(unsafe.Pointer(&k.shards[i-1]), unsafe.Sizeof(shardState{})-1)
			assert.Less(t, line(prevEnd), line(unsafe.Pointer(&k.shards[i])), "MaxKeys %d: shards %d and %d", maxKeys, i-1, i)
		}
		for i := range 5000 {
			k.Allow("key-" + strconv.Itoa(i))
		}
		for i := range k.shards {
			tab := k.shards[i].tab.Load()
			assert.Zero(t, uintptr(unsafe.Pointer(tab))%64, "a table owns its line")
			assert.Zero(t, uintptr(unsafe.Pointer(&tab.slots[0]))%64, "slots start a line")
			assert.Zero(t, uintptr(len(tab.slots))*unsafe.Sizeof(slot{})%64, "slots fill their lines")
			for j := range tab.slots {
				if e := tab.slots[j].load(); e != nil {
					require.Zero(t, uintptr(unsafe.Pointer(e))%64, "an entry owns its line")
				}
			}
		}
	}
	assert.Equal(t, uintptr(64), unsafe.Sizeof(entry{}))
	assert.LessOrEqual(t, unsafe.Sizeof(shardState{}), uintptr(256-64), "64 bytes apart at any alignment")
	assert.Equal(t, uintptr(64), unsafe.Sizeof(table{}))
	for _, n := range []int{8, 64, 65, 1000, 1 << 16} {
		s := alignedSlots(n)
		assert.Len(t, s, n)
		assert.Zero(t, uintptr(unsafe.Pointer(&s[0]))%64, "alignedSlots(%d)", n)
	}
}

// TestKeyedTable exercises the table under inserts, evictions, prunes and
// shrinks: every key Keyed reports remembered is found, Len counts them,
// and a key never seen again is never found.
func TestKeyedTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 10, Burst: 2}, MaxKeys: 500})
		live := map[string]bool{}
		for round := range 20 {
			for i := range 300 {
				key := fmt.Sprintf("r%d-%d", round%4, i*(round+1)%997)
				k.Allow(key)
				live[key] = true
			}
			if round%5 == 4 {
				bubble.Sleep(time.Second) // every bucket refills: all idle
				assert.Equal(t, k.Len(), k.Prune(), "round %d: every key was idle", round)
				assert.Zero(t, k.Len())
				clear(live)
				continue
			}
			n := 0
			for key := range live {
				if remembered(k, key) {
					n++
				}
			}
			assert.Equal(t, k.Len(), n, "round %d: every remembered key is found", round)
			assert.LessOrEqual(t, k.Len(), 500)
			for i := range k.shards {
				s := &k.shards[i]
				s.mu.Lock()
				c := 0
				for _, sl := range s.tab.Load().slots {
					if sl.get() != nil {
						c++
					}
				}
				assert.Equal(t, s.n, c, "shard %d counts its entries", i)
				s.mu.Unlock()
			}
			assert.False(t, remembered(k, "never"))
			bubble.Sleep(150 * time.Millisecond)
		}
	})
}

// TestKeyedLockFreeDuringResize: callers taking tokens without the lock
// while other keys grow the tables under it lose no update: each hot key
// is granted exactly its burst (the rate refills nothing meanwhile).
func TestKeyedLockFreeDuringResize(t *testing.T) {
	const hot, burst, workers = 4, 50, 4
	k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1e-6, Burst: burst}, MaxKeys: 1 << 16})
	var admitted [hot]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 4000 {
				if key := (w + i) % hot; k.Allow("hot-" + strconv.Itoa(key)) {
					admitted[key].Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 4000 { // ~60 keys a shard: never full, tables grow
			k.Allow("flood-" + strconv.Itoa(i))
		}
	})
	wg.Wait()
	for key := range hot {
		assert.Equal(t, int64(burst), admitted[key].Load(), "hot key %d", key)
	}
	assert.Equal(t, 4000+hot, k.Len())
}

// TestKeyedConcurrentEvictions: lock-free callers racing with forced
// evictions and prunes keep the bound and the counts consistent (run with
// -race).
func TestKeyedConcurrentEvictions(t *testing.T) {
	k := mustNewKeyed(t, KeyedConfig{Config: Config{Rate: 1e9, Burst: 1e9}, MaxKeys: 64})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				k.Allow(strconv.Itoa((w*7 + i) % 200))
				if i%500 == 0 {
					k.Prune()
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, k.Len(), 64)
	m := k.Metrics()
	assert.Equal(t, uint64(4*5000), m.Allowed)
}
