package redisrate

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
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
	t    testing.TB
	bin  string
	dir  string
	Addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startRedis starts a redis-server for t and stops it when t ends. If
// there is no redis-server on the PATH it skips t, or fails it if
// SEAWALL_REQUIRE_REDIS=1 (as .ci/run sets).
func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SEAWALL_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server is not on the PATH, and SEAWALL_REQUIRE_REDIS=1 requires it: %v", err)
		}
		t.Skip("redis-server is not on the PATH: skipping the tests against a real Redis " +
			"(apt-get install redis-server; SEAWALL_REQUIRE_REDIS=1 makes this a failure)")
	}
	s := &redisServer{t: t, bin: bin, dir: t.TempDir()}
	// A free port may be taken between finding it and redis-server binding
	// it: try a few.
	for range 5 {
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		if err = s.start(args...); err == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", err)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs redis-server on s.Addr and waits until it answers PING.
func (s *redisServer) start(args ...string) error {
	_, port, _ := net.SplitHostPort(s.Addr)
	argv := append([]string{
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", "redis.log", "--loglevel", "warning", "--daemonize", "no",
	}, args...)
	cmd := exec.Command(s.bin, argv...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if ping(s.Addr) == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited", s.Addr)
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("redis-server on %s does not answer PING: %w", s.Addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// ping sends PING to addr on a connection of its own.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Kill kills the server (SIGKILL: no shutdown, as a crash) and waits for
// it to exit. It does nothing if the server is not running.
func (s *redisServer) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again, empty, on the same port.
func (s *redisServer) Restart(args ...string) {
	s.t.Helper()
	s.Kill()
	var err error
	for range 3 { // the port is ours, but its last connections may linger
		if err = s.start(args...); err == nil {
			return
		}
	}
	s.t.Fatalf("redis-server did not restart: %v", err)
}

// Stop freezes the server (SIGSTOP): its connections stay open and nothing
// answers, as a Redis stuck or behind a dead link. Cont resumes it.
func (s *redisServer) Stop() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Cont resumes a server frozen by Stop.
func (s *redisServer) Cont() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// client returns a new go-redis client of s, closed when t ends, with
// ContextTimeoutEnabled as the limiters require.
func (s *redisServer) client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
