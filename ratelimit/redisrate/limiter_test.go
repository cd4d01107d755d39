package redisrate

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/ratelimit"
)

// The limiters satisfy the interfaces seawall's middleware and pipelines
// take.
var (
	_ ratelimit.Allower           = (*Limiter)(nil)
	_ interface{ Try(int) error } = (*Limiter)(nil)
	_ seawall.Policy              = (*Limiter)(nil)
	_ seawall.ChainPolicy         = (*Limiter)(nil)
	_ ratelimit.KeyedLimiter      = (*Keyed)(nil)
)

func newLimiter(t testing.TB, c redis.UniversalClient, cfg Config) *Limiter {
	t.Helper()
	if cfg.Key == "" {
		cfg.Key = t.Name()
	}
	if cfg.Instances == 0 {
		cfg.Instances = 1
	}
	if cfg.Timeout == 0 {
		// Generous: these tests are about the limit, and a first call (dial,
		// handshake, NOSCRIPT, EVAL) under -race on a busy 2-core machine
		// can take more than the default 5ms. Tests of timeouts set theirs.
		cfg.Timeout = 200 * time.Millisecond
	}
	l, err := New(c, cfg)
	require.NoError(t, err)
	return l
}

// A full bucket admits Burst events at once, then refuses with a hint
// that, waited out, admits the next: the hint is exact, to the
// microsecond, not rounded down to whole seconds (redis-cell's issue 56).
func TestBurstThenExactHint(t *testing.T) {
	s := startRedis(t)
	l := newLimiter(t, s.client(t), Config{Rate: 20, Burst: 3})
	for i := range 3 {
		require.True(t, l.Allow(), "event %d of the burst", i)
	}
	for i := range 5 {
		err := l.Try(1)
		require.ErrorIs(t, err, ErrLimited)
		require.ErrorIs(t, err, seawall.ErrRejected)
		hint, ok := seawall.RetryAfter(err)
		require.True(t, ok, "a refusal carries a hint")
		assert.Greater(t, hint, time.Duration(0))
		assert.LessOrEqual(t, hint, 50*time.Millisecond, "one token comes every 50ms")
		require.NoError(t, sleep(context.Background(), hint))
		assert.NoError(t, l.Try(1), "round %d: waiting out the hint %v finds the token", i, hint)
	}
	m := l.Metrics()
	assert.Equal(t, uint64(8), m.Admitted)
	assert.Equal(t, uint64(5), m.Rejected)
	assert.Equal(t, uint64(13), m.RoundTrip.Total())
	assert.Zero(t, m.RedisErrors)
	assert.Equal(t, uint64(1), m.ScriptLoads, "the first call loads the script")
}

// Limiters with the same Prefix and Key share one bucket, whichever
// client they use; another key is another bucket.
func TestSharedBucketAndKeyLayout(t *testing.T) {
	s := startRedis(t)
	a := newLimiter(t, s.client(t), Config{Rate: 1, Burst: 2, Key: "accounts"})
	b := newLimiter(t, s.client(t), Config{Rate: 1, Burst: 2, Key: "accounts"})
	other := newLimiter(t, s.client(t), Config{Rate: 1, Burst: 2, Key: "payments", Prefix: "app:"})
	assert.True(t, a.Allow())
	assert.True(t, b.Allow())
	assert.False(t, a.Allow(), "two processes share one bucket of 2")
	assert.False(t, b.Allow())
	assert.True(t, other.Allow())

	ctx := context.Background()
	rdb := s.client(t)
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"seawall:rl:{accounts}", "app:{payments}"}, keys)
	// The bucket expires when it has refilled: two tokens at 1/s.
	ttl, err := rdb.PTTL(ctx, "seawall:rl:{accounts}").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Second)
	assert.LessOrEqual(t, ttl, 2*time.Second)
	ttl, err = rdb.PTTL(ctx, "app:{payments}").Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, ttl, time.Second)
}

// AllowN and Try take n tokens; n over the burst is an error, not a
// refusal to retry, and asks Redis nothing.
func TestCostOverBurst(t *testing.T) {
	s := startRedis(t)
	c := s.client(t)
	var sent countHook
	c.AddHook(&sent)
	l := newLimiter(t, c, Config{Rate: 0.1, Burst: 5})
	require.True(t, l.AllowN(3))
	assert.False(t, l.AllowN(3), "2 tokens left")
	assert.True(t, l.AllowN(2))
	n := sent.n.Load()

	err := l.Try(6)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrLimited, "no wait can grant 6 tokens of a bucket of 5")
	assert.EqualError(t, err, "redisrate: n 6 exceeds Burst 5")
	assert.False(t, l.AllowN(6))
	assert.EqualError(t, l.WaitN(context.Background(), 6), "redisrate: n 6 exceeds Burst 5")
	assert.NoError(t, l.Try(0), "n ≤ 0 asks for nothing")
	assert.True(t, l.AllowN(-1))
	assert.Equal(t, n, sent.n.Load(), "nothing sent to Redis")
}

// Wait takes the token and waits for it; it fails at once when the token
// comes after the deadline.
func TestWait(t *testing.T) {
	s := startRedis(t)
	l := newLimiter(t, s.client(t), Config{Rate: 10, Burst: 1})
	ctx := context.Background()
	require.NoError(t, l.Wait(ctx), "a full bucket")

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.Wait(short)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, ErrLimited, "the token comes in about 100ms, after the deadline")
	hint, _ := seawall.RetryAfter(err)
	assert.Greater(t, hint, 20*time.Millisecond)
	assert.Less(t, elapsed, 20*time.Millisecond, "refused at once, not at the deadline")
	assert.NoError(t, short.Err(), "the caller keeps the rest of its time")

	start = time.Now()
	require.NoError(t, l.Wait(ctx))
	elapsed = time.Since(start)
	assert.Greater(t, elapsed, 50*time.Millisecond, "waited for the next token")
	assert.Less(t, elapsed, time.Second)

	done, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, l.Wait(done), context.Canceled)
}

// Do runs op only with a token, and the pipeline form does the same.
func TestDo(t *testing.T) {
	s := startRedis(t)
	l := newLimiter(t, s.client(t), Config{Rate: 1, Burst: 1})
	ran := 0
	op := func(context.Context) error { ran++; return nil }
	require.NoError(t, l.Do(context.Background(), op))
	err := l.Do(context.Background(), op)
	assert.ErrorIs(t, err, ErrLimited)
	assert.Equal(t, 1, ran)
	err = seawall.Pipeline(l).Do(context.Background(), op)
	assert.ErrorIs(t, err, ErrLimited)
	assert.Equal(t, 1, ran)
}

// Keyed keeps one shared bucket per key, and refuses bad keys without
// asking Redis.
func TestKeyed(t *testing.T) {
	s := startRedis(t)
	c := s.client(t)
	var sent countHook
	c.AddHook(&sent)
	k, err := NewKeyed(c, Config{Rate: 1, Burst: 2, Instances: 1, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	k2, err := NewKeyed(s.client(t), Config{Rate: 1, Burst: 2, Instances: 1, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.True(t, k.Allow("alice"))
	assert.True(t, k2.Allow("alice"))
	assert.False(t, k.Allow("alice"), "alice's bucket is shared")
	err = k2.Try("alice", 1)
	assert.ErrorIs(t, err, ErrLimited)
	assert.True(t, k.Allow("bob"), "bob has his own")
	assert.NoError(t, k.Try("carol", 2))

	n := sent.n.Load()
	assert.False(t, k.Allow(""))
	assert.ErrorIs(t, k.Try("", 1), errEmptyKey)
	long := string(make([]byte, MaxKeyLen+1))
	assert.EqualError(t, k.Try(long, 1), "redisrate: key of 513 bytes is longer than MaxKeyLen 512")
	assert.EqualError(t, k.Try("dave", 3), "redisrate: n 3 exceeds Burst 2")
	assert.Equal(t, n, sent.n.Load(), "nothing sent to Redis")
	assert.NoError(t, k.Try(string(make([]byte, MaxKeyLen)), 1), "MaxKeyLen bytes are fine")
	m := k.Metrics()
	assert.Equal(t, uint64(4), m.Admitted, "alice, bob, carol, the longest key")
	assert.Equal(t, uint64(5), m.Rejected, "alice again, and the four bad calls")
}

// Redis losing its script cache (SCRIPT FLUSH, as after a restart or a
// failover) costs one NOSCRIPT answer and a reload, not a failure.
func TestScriptFlush(t *testing.T) {
	s := startRedis(t)
	rdb := s.client(t)
	l := newLimiter(t, s.client(t), Config{Rate: 1000, Burst: 1000})
	require.True(t, l.Allow())
	require.NoError(t, rdb.ScriptFlush(context.Background()).Err())
	exists, err := rdb.ScriptExists(context.Background(), ScriptSHA()).Result()
	require.NoError(t, err)
	require.Equal(t, []bool{false}, exists)
	for range 10 {
		require.True(t, l.Allow())
	}
	m := l.Metrics()
	assert.Equal(t, uint64(2), m.ScriptLoads, "the first call, and the first after the flush")
	assert.Zero(t, m.RedisErrors)
	assert.Zero(t, m.Fallback)
}

// Many processes sharing one key admit the global rate, not a multiple:
// four limiters, each with its own client, hammer one bucket for 5s.
func TestAccuracyFourReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("5s of real time")
	}
	s := startRedis(t)
	const (
		rate     = 1000.0
		burst    = 100
		replicas = 4
		callers  = 4 // goroutines per replica
		run      = 5 * time.Second
	)
	// The timeout is generous: this test is about accuracy, and on a busy
	// 2-core machine under -race a round trip can take milliseconds. Each
	// replica's first call (dial, script load) comes before the clock.
	ls := make([]*Limiter, replicas)
	for i := range ls {
		ls[i] = newLimiter(t, s.client(t), Config{
			Rate: rate, Burst: burst, Key: "accuracy", Instances: replicas, Timeout: 200 * time.Millisecond,
		})
		require.True(t, ls[i].Allow())
	}
	require.NoError(t, s.client(t).Del(context.Background(), "seawall:rl:{accuracy}").Err())
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	for _, l := range ls {
		for range callers {
			go func() {
				defer func() { done <- struct{}{} }()
				for ctx.Err() == nil {
					l.Allow()
				}
			}()
		}
	}
	for range replicas * callers {
		<-done
	}
	elapsed := time.Since(start).Seconds()
	var admitted, calls, fallback uint64
	for i, l := range ls {
		m := l.Metrics()
		admitted += m.Admitted
		calls += m.Admitted + m.Rejected
		fallback += m.Fallback.LocalAdmitted + m.Fallback.LocalRejected
		t.Logf("replica %d: admitted %d, rejected %d, Redis errors %d, round trips %v",
			i, m.Admitted, m.Rejected, m.RedisErrors, m.RoundTrip.Counts)
	}
	want := rate * elapsed
	t.Logf("%d replicas × %d goroutines, %.3fs: %d calls (%.0f/s), admitted %d; want %.0f ± 2%% + burst %d (%.3f of the rate)",
		replicas, callers, elapsed, calls, float64(calls)/elapsed, admitted, want, burst, float64(admitted-burst)/want)
	if fallback > 0 {
		t.Skipf("the machine was too busy: %d decisions fell back (Redis slower than its timeout); accuracy not judged", fallback)
	}
	if float64(calls) < 2*want {
		t.Skipf("the machine was too busy: %d calls in %.3fs, under twice the rate, cannot saturate the bucket; accuracy not judged", calls, elapsed)
	}
	assert.GreaterOrEqual(t, float64(admitted), want*0.98)
	assert.LessOrEqual(t, float64(admitted), want*1.02+burst)
}

// countHook counts the commands a client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
