package benchmarks

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/redisserver"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/ratelimit/redisrate"
)

// The shared limiters run against one local redis-server the benchmark
// starts (on a free loopback port, no persistence), as configured alike:
// a million events a second and a billion tokens in the bucket, so that
// the measured path always takes a token; each loop checks that no call
// is refused and that nothing fell back.
const (
	redisRate  = 1e6
	redisBurst = 1e9
	// redisGoroutines is the number of goroutines of mode=parallel, whatever
	// GOMAXPROCS: a server handling 64 requests at once.
	redisGoroutines = 64
)

// BenchmarkRedisLimiter runs the same workloads against each shared
// limiter. Names are api=…/mode=…/lib=…, for benchstat -col /lib:
//
//   - api=allow: take one token from the shared bucket, one round trip:
//     seawall's redisrate Limiter.Allow; go-redis/redis_rate/v10
//     Limiter.Allow (its GCRA script by EVALSHA); lib=evalsha, the floor:
//     a plain EVALSHA of redisrate's script through the same client, with
//     no timeout, breaker, fallback nor metrics.
//   - api=fallback: Redis down and the breaker open, every decision taken
//     by the local share: seawall's Limiter.Allow; lib=local, the floor: a
//     ratelimit.Limiter's Allow.
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs 64
//     goroutines (b.SetParallelism) with b.RunParallel, on one limiter and
//     one client (go-redis's default pool, 10 connections per CPU).
func BenchmarkRedisLimiter(b *testing.B) {
	addr := startBenchRedis(b)
	type lib struct {
		name  string
		bench func(b *testing.B, addr string, parallel bool)
	}
	apis := []struct {
		name string
		libs []lib
	}{
		{"allow", []lib{
			{"seawall", benchRedisrateAllow},
			{"redis_rate", benchRedisRateAllow},
			{"evalsha", benchEvalsha},
		}},
		{"fallback", []lib{
			{"seawall", benchRedisrateFallback},
			{"local", benchLocalShare},
		}},
	}
	for _, api := range apis {
		for _, mode := range []string{"serial", "parallel"} {
			for _, lib := range api.libs {
				b.Run("api="+api.name+"/mode="+mode+"/lib="+lib.name, func(b *testing.B) {
					b.ReportAllocs()
					lib.bench(b, addr, mode == "parallel")
				})
			}
		}
	}
}

func newRedisClient(b *testing.B, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	return c
}

// runAllow runs allow serially or from 64 goroutines; it must never refuse.
func runAllow(b *testing.B, parallel bool, allow func() bool) {
	if !parallel {
		for b.Loop() {
			if !allow() {
				b.Fatal("refused")
			}
		}
		return
	}
	b.SetParallelism(max(1, redisGoroutines/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !allow() {
				panic("refused")
			}
		}
	})
}

func benchRedisrateAllow(b *testing.B, addr string, parallel bool) {
	l, err := redisrate.New(newRedisClient(b, addr), redisrate.Config{
		Rate: redisRate, Burst: redisBurst, Key: b.Name(), Instances: 1,
		Timeout: 100 * time.Millisecond, // the Redis path is measured, never the fallback
	})
	if err != nil {
		b.Fatal(err)
	}
	l.Allow() // loads the script
	runAllow(b, parallel, l.Allow)
	if m := l.Metrics(); m.RedisErrors > 0 {
		b.Fatalf("%d calls fell back", m.RedisErrors)
	}
}

func benchRedisRateAllow(b *testing.B, addr string, parallel bool) {
	l := redis_rate.NewLimiter(newRedisClient(b, addr))
	limit := redis_rate.Limit{Rate: redisRate, Burst: redisBurst, Period: time.Second}
	ctx := context.Background()
	key := b.Name()
	runAllow(b, parallel, func() bool {
		res, err := l.Allow(ctx, key, limit)
		if err != nil {
			panic(err)
		}
		return res.Allowed > 0
	})
}

func benchEvalsha(b *testing.B, addr string, parallel bool) {
	c := newRedisClient(b, addr)
	ctx := context.Background()
	if err := c.ScriptLoad(ctx, redisrate.Script()).Err(); err != nil {
		b.Fatal(err)
	}
	sha, keys := redisrate.ScriptSHA(), []string{b.Name()}
	interval := strconv.FormatFloat(1e6/redisRate, 'g', -1, 64)
	tau := strconv.FormatFloat(redisBurst*1e6/redisRate, 'g', -1, 64)
	runAllow(b, parallel, func() bool {
		v, err := c.EvalSha(ctx, sha, keys, interval, tau, 1, 0).Int64Slice()
		if err != nil {
			panic(err)
		}
		return v[0] == 1
	})
}

// deadAddr is a loopback address nobody listens on.
func deadAddr(b *testing.B) string {
	port, err := redisserver.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

func benchRedisrateFallback(b *testing.B, _ string, parallel bool) {
	redis.SetLogger(quietLogger{}) // go-redis logs each refused dial
	c := redis.NewClient(&redis.Options{Addr: deadAddr(b), ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = c.Close() })
	l, err := redisrate.New(c, redisrate.Config{
		Rate: redisRate, Burst: redisBurst, Key: "fallback", Instances: 1,
		Breaker: breaker.Config{OpenDuration: time.Hour},
	})
	if err != nil {
		b.Fatal(err)
	}
	for l.Metrics().Breaker != breaker.Open { // Redis is down: trip the breaker
		l.Allow()
	}
	runAllow(b, parallel, l.Allow)
}

func benchLocalShare(b *testing.B, _ string, parallel bool) {
	l, err := ratelimit.New(ratelimit.Config{Rate: redisRate, Burst: redisBurst})
	if err != nil {
		b.Fatal(err)
	}
	runAllow(b, parallel, l.Allow)
}

// startBenchRedis starts a redis-server for b, killed when b ends, and
// returns its address; it skips b if there is no redis-server on the PATH.
func startBenchRedis(b *testing.B) string {
	srv, err := redisserver.Start(context.Background(), b.TempDir())
	if errors.Is(err, redisserver.ErrNotFound) {
		b.Skip("redis-server is not on the PATH: skipping the shared limiter benchmarks (apt-get install redis-server)")
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Kill)
	return srv.Addr
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
