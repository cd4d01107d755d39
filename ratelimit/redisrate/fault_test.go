package redisrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/redisserver"
)

// deadClient returns a client of a loopback port nobody listens on: every
// call fails at once, connection refused, as when Redis is down.
func deadClient(t *testing.T) *redis.Client {
	port, err := redisserver.FreePort()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Each mode decides as documented while Redis is down, and counts its
// decisions; the breaker opens after 3 failures and stops the calls. (A
// refused connection costs a call the whole Timeout, 200ms here: go-redis
// retries the dial until the context ends. The breaker is what makes an
// outage cheap.)
func TestModesWhileRedisIsDown(t *testing.T) {
	t.Run("FailClosed", func(t *testing.T) {
		l := newLimiter(t, deadClient(t), Config{Rate: 100, Burst: 10, Fallback: FailClosed})
		for range 3 {
			err := l.Try(1)
			require.ErrorIs(t, err, ErrUnavailable)
			assert.ErrorIs(t, err, seawall.ErrRejected)
			assert.NotErrorIs(t, err, ErrLimited)
		}
		assert.Equal(t, breaker.Open, l.Metrics().Breaker)
		err := l.Try(1)
		require.ErrorIs(t, err, ErrUnavailable)
		assert.ErrorIs(t, err, breaker.ErrOpen, "the cause: the breaker is open")
		hint, ok := seawall.RetryAfter(err)
		assert.True(t, ok && hint > 0 && hint <= time.Second, "the breaker's hint, %v", hint)
		assert.False(t, l.Allow())
		assert.ErrorIs(t, l.Wait(context.Background()), ErrUnavailable)
		m := l.Metrics()
		assert.Equal(t, uint64(6), m.Fallback.Closed)
		assert.Equal(t, uint64(6), m.Rejected)
		assert.Equal(t, uint64(3), m.RedisErrors, "the breaker kept the last 3 from Redis")
	})
	t.Run("FailOpen", func(t *testing.T) {
		l := newLimiter(t, deadClient(t), Config{Rate: 100, Burst: 10, Fallback: FailOpen})
		for range 20 {
			require.True(t, l.Allow())
		}
		assert.NoError(t, l.Try(10))
		assert.NoError(t, l.Wait(context.Background()))
		m := l.Metrics()
		assert.Equal(t, uint64(22), m.Fallback.Open)
		assert.Equal(t, uint64(22), m.Admitted)
	})
	t.Run("FallbackLocal", func(t *testing.T) {
		// A quarter of the limit: 0.25/s, ceil(10/4) = 3 tokens.
		l := newLimiter(t, deadClient(t), Config{Rate: 1, Burst: 10, Instances: 4})
		for i := range 3 {
			require.True(t, l.Allow(), "event %d of the local share's burst", i)
		}
		err := l.Try(1)
		require.ErrorIs(t, err, ErrLimited)
		hint, _ := seawall.RetryAfter(err)
		assert.True(t, hint > 3*time.Second && hint <= 4*time.Second, "a token every 4s: hint %v", hint)
		m := l.Metrics()
		assert.Equal(t, uint64(3), m.Fallback.LocalAdmitted)
		assert.Equal(t, uint64(1), m.Fallback.LocalRejected)

		require.NoError(t, l.SetInstances(1))
		assert.ErrorIs(t, l.Try(1), ErrLimited, "the share grows; the tokens taken stay taken")
		assert.Error(t, l.SetInstances(0))
	})
	t.Run("Keyed", func(t *testing.T) {
		k, err := NewKeyed(deadClient(t), Config{Rate: 1, Burst: 10, Instances: 5})
		require.NoError(t, err)
		assert.True(t, k.Allow("a"))
		assert.True(t, k.Allow("a"))
		assert.False(t, k.Allow("a"), "a fifth of 10 tokens")
		assert.True(t, k.Allow("b"))
		assert.ErrorIs(t, k.Try("b", 2), ErrLimited)
		require.NoError(t, k.SetInstances(1))
		assert.NoError(t, k.Try("b", 10), "a new share, full")
	})
}

// The fallback path, breaker open, allocates nothing.
func TestFallbackAllocatesNothing(t *testing.T) {
	l := newLimiter(t, deadClient(t), Config{Rate: 1e6, Burst: 1e6})
	l.Breaker().ForceOpen()
	if n := testing.AllocsPerRun(1000, func() { l.Allow() }); n != 0 {
		t.Errorf("Allow with the breaker open: %v allocations, want 0", n)
	}
	assert.Equal(t, uint64(1001), l.Metrics().Fallback.LocalAdmitted)
}

// A fleet of 4 replicas shares a limit; redis-server is killed mid-run
// (SIGKILL, as a crash), then restarted empty on the same port.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("3s of real time")
	}
	s := startRedis(t)
	const (
		rate     = 1000.0
		burst    = 100
		replicas = 4
		open     = 300 * time.Millisecond
	)
	cfg := Config{Rate: rate, Burst: burst, Key: "fleet", Instances: replicas, Timeout: defaultTimeout, Breaker: breaker.Config{OpenDuration: open}}
	ls := make([]*Limiter, replicas)
	for i := range ls {
		ls[i] = newLimiter(t, s.client(t), cfg)
		require.True(t, ls[i].Allow()) // dial and load the script before the clock
	}

	var (
		down     atomic.Bool
		stop     atomic.Bool
		mu       sync.Mutex
		lat      []time.Duration // the calls' latencies while Redis is down
		badErrs  []error
		wg       sync.WaitGroup
		timeout  = defaultTimeout
		healthy  = 700 * time.Millisecond
		downTime = 1200 * time.Millisecond
	)
	// Each replica calls in rounds of 10, one round a millisecond: 10000
	// calls a second, far over its share, like a busy server (not a loop
	// that spins on the fallback, starving Redis and the probes of a
	// 2-core machine).
	for _, l := range ls {
		wg.Go(func() {
			var mine []time.Duration
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for ; !stop.Load(); <-tick.C {
				for range 10 {
					d := down.Load()
					start := time.Now()
					err := l.Try(1)
					if d {
						mine = append(mine, time.Since(start))
					}
					if err != nil && !isLimited(err) {
						mu.Lock()
						badErrs = append(badErrs, err)
						mu.Unlock()
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()

	snapshot := func() (local, redis, loads uint64) {
		for _, l := range ls {
			m := l.Metrics()
			local += m.Fallback.LocalAdmitted
			redis += m.Admitted - m.Fallback.LocalAdmitted
			loads += m.ScriptLoads
		}
		return
	}
	wait(t, healthy)
	down.Store(true)
	s.Kill()
	killed := time.Now()
	local0, redis0, _ := snapshot()
	wait(t, downTime)
	s.Restart()
	restarted := time.Now()
	down.Store(false)
	timeouts := func() (n uint64) {
		for _, l := range ls {
			n += l.Metrics().Timeouts
		}
		return n
	}
	timeouts0 := timeouts()

	// Shared limiting resumes within one open period: every breaker closes
	// and Redis decides again.
	var recovered time.Duration
	poll(t, 2*open+time.Second, func() bool {
		for _, l := range ls {
			if l.Metrics().Breaker != breaker.Closed {
				return false
			}
		}
		recovered = time.Since(restarted)
		return true
	})
	local1, redis1, loads := snapshot()
	// A probe of the restarted Redis that timed out (5ms) opened its
	// breaker for another period: on a machine too busy to answer a
	// loopback call in 5ms, not a fault of the limiter's.
	slowProbes := timeouts() - timeouts0
	window := time.Since(killed)
	wait(t, 200*time.Millisecond)
	_, redis2, _ := snapshot()
	stop.Store(true)
	wg.Wait()

	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	var errs uint64
	for _, l := range ls {
		errs += l.Metrics().RedisErrors
	}
	share := rate*window.Seconds() + replicas*float64((burst+replicas-1)/replicas)
	t.Logf("down %v, restart to all breakers closed %v (open period %v)", downTime, recovered, open)
	t.Logf("while down: %d calls, p50 %v, p99 %v, max %v (timeout %v)", len(lat), lat[len(lat)/2], p99, lat[len(lat)-1], timeout)
	t.Logf("from kill to recovery (%v): fallback admitted %d (bound: the shares, %.0f), Redis admitted %d; Redis errors %d, script loads %d",
		window, local1-local0, share, redis1-redis0, errs, loads)

	assert.Empty(t, badErrs, "callers see only ErrLimited in FallbackLocal mode")
	assert.Greater(t, local1-local0, uint64(0.9*rate*downTime.Seconds()), "the fallback admits the fleet's share")
	assert.LessOrEqual(t, float64(local1-local0), share, "the fallback admits no more than the instances' shares")
	assert.Less(t, p99, timeout, "an outage adds no timeout to the calls")
	assert.GreaterOrEqual(t, loads, uint64(2), "the script was loaded again after the restart (by the first replica: EVAL caches it for all)")
	assert.Greater(t, redis2, redis1, "Redis decides again")
	switch {
	case recovered <= open+100*time.Millisecond:
	case slowProbes > 0:
		t.Logf("the machine was too busy to time the recovery: %d calls to the restarted Redis timed out (%v), "+
			"and each reopened a breaker; shared limiting resumed %v after the restart", slowProbes, timeout, recovered)
	default:
		t.Errorf("shared limiting resumed %v after the restart, more than one open period (%v), with no call timed out", recovered, open)
	}
}

// isLimited reports whether err is a refusal over the limit.
func isLimited(err error) bool {
	_, hinted := seawall.RetryAfter(err)
	return hinted && errors.Is(err, ErrLimited)
}

// A Redis that stops answering (SIGSTOP) costs each call at most the
// timeout, and only until the breaker opens.
func TestFrozenRedisTimesOut(t *testing.T) {
	s := startRedis(t)
	const timeout = 20 * time.Millisecond
	l := newLimiter(t, s.client(t), Config{Rate: 100, Burst: 10, Fallback: FailClosed, Timeout: timeout})
	require.True(t, l.Allow())
	s.Freeze()
	defer s.Thaw()
	for i := range 3 {
		start := time.Now()
		err := l.Try(1)
		elapsed := time.Since(start)
		require.ErrorIs(t, err, ErrUnavailable)
		assert.GreaterOrEqual(t, elapsed, timeout, "call %d waits for Redis until the timeout", i)
		assert.Less(t, elapsed, timeout+50*time.Millisecond, "call %d: and no longer", i)
	}
	start := time.Now()
	err := l.Try(1)
	assert.Less(t, time.Since(start), 5*time.Millisecond, "the breaker is open: Redis is not called")
	assert.ErrorIs(t, err, breaker.ErrOpen)
	m := l.Metrics()
	assert.Equal(t, uint64(3), m.Timeouts)
	assert.Equal(t, uint64(3), m.RedisErrors)
	assert.Equal(t, uint64(3), m.RoundTrip.Counts[8]+m.RoundTrip.Counts[9],
		"the timed-out round trips are in the histogram, about 20ms: %v", m.RoundTrip.Counts)
}

// A call whose answer was lost may have run: it is never sent again,
// though go-redis retries a timed-out read (MaxRetries 3 by default). The
// client here would: its ReadTimeout (20ms) is shorter than the limiter's
// Timeout, its pool holds idle connections to retry on, and Redis, frozen,
// keeps every command sent to it for when it resumes.
func TestTimedOutCallIsNotReplayed(t *testing.T) {
	s := startRedis(t)
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr, ReadTimeout: 20 * time.Millisecond, WriteTimeout: 20 * time.Millisecond,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond,
	})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	idle := func() { // three connections in the pool, idle
		var cns []*redis.Conn
		for range 3 {
			cn := c.Conn()
			require.NoError(t, cn.Ping(ctx).Err())
			cns = append(cns, cn)
		}
		for _, cn := range cns {
			_ = cn.Close()
		}
	}
	evals := func() int64 { // how many times Redis ran the script
		info, err := s.client(t).InfoMap(ctx, "commandstats").Result()
		require.NoError(t, err)
		n := int64(0)
		for _, cmd := range []string{"cmdstat_set"} {
			if v, ok := info["Commandstats"][cmd]; ok {
				var calls int64
				_, _ = fmt.Sscanf(v, "calls=%d", &calls)
				n += calls
			}
		}
		return n
	}
	const burst = 10
	l := newLimiter(t, c, Config{Rate: 0.01, Burst: burst, Fallback: FailClosed, Timeout: 200 * time.Millisecond})
	require.True(t, l.Allow()) // loads the script; 9 tokens left
	idle()
	before := evals()

	s.Freeze()
	start := time.Now()
	err := l.Try(1)
	elapsed := time.Since(start)
	s.Thaw()
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Less(t, elapsed, 100*time.Millisecond, "one read timeout, not the limiter's Timeout after retries")
	assert.Equal(t, uint64(1), l.Metrics().Timeouts)
	assert.Equal(t, before+1, evals(), "Redis ran the timed-out call once, when it resumed")
	left := 0
	for l.Allow() {
		left++
	}
	assert.Equal(t, burst-2, left, "the timed-out call took its token once")

	// The premise: go-redis's own Script.Run, on the same client, sends
	// the timed-out call again on the idle connections.
	idle()
	before = evals()
	s.Freeze()
	_ = redis.NewScript(Script()).Run(ctx, c, []string{"control"}, "1e8", "1e9", 1, 0).Err()
	s.Thaw()
	ran := evals() - before
	t.Logf("control: go-redis's Script.Run, timed out, ran %d times", ran)
	assert.Greater(t, ran, int64(1), "go-redis no longer replays a timed-out call: this test shows nothing")
}

// wait waits d of real time: the tests here drive a real server.
func wait(t *testing.T, d time.Duration) {
	t.Helper()
	require.NoError(t, sleep(context.Background(), d))
}

// poll calls cond every millisecond until it returns true, and fails t if
// it does not within d.
func poll(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("not within %v", d)
		case <-tick.C:
		}
	}
}
