package redisrate

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall/internal/redisserver"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// limiter starts none, and every client and server a test starts is
// stopped by its cleanup.
// go-redis's log of failed dials, expected while a test's Redis is down,
// is silenced.
func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// redisServer is a redis-server process of a test's own, on a free
// loopback port, with no persistence.
type redisServer struct {
	*redisserver.Server
	t testing.TB
}

// startRedis starts a redis-server for t and kills it when t ends. If
// there is no redis-server on the PATH it skips t, or fails it if
// SEAWALL_REQUIRE_REDIS=1 (as .ci/run sets).
func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	srv, err := redisserver.Start(context.Background(), t.TempDir(), args...)
	switch {
	case errors.Is(err, redisserver.ErrNotFound) && os.Getenv("SEAWALL_REQUIRE_REDIS") != "1":
		t.Skip("redis-server is not on the PATH: skipping the tests against a real Redis " +
			"(apt-get install redis-server; SEAWALL_REQUIRE_REDIS=1 makes this a failure)")
	case errors.Is(err, redisserver.ErrNotFound):
		t.Fatalf("%v, and SEAWALL_REQUIRE_REDIS=1 requires it", err)
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	return &redisServer{Server: srv, t: t}
}

// Restart starts the server again, empty, on the same port.
func (s *redisServer) Restart(args ...string) {
	s.t.Helper()
	if err := s.Server.Restart(context.Background(), args...); err != nil {
		s.t.Fatal(err)
	}
}

// client returns a new go-redis client of s, closed when t ends, with
// ContextTimeoutEnabled as the limiters require.
func (s *redisServer) client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
