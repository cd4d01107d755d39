// Package redisserver runs a redis-server of the caller's own, for the
// tests, benchmarks and demo of the Redis limiter (ratelimit/redisrate):
// on a free loopback port, with no persistence, its files in a directory
// of the caller's. It uses only the standard library, so that the root
// module's graph stays free of Redis clients.
package redisserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ErrNotFound is Start's error when there is no redis-server on the PATH.
var ErrNotFound = errors.New("redis-server is not on the PATH")

// A Server is a running redis-server process.
type Server struct {
	Addr string // host:port, on 127.0.0.1

	bin, dir string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
}

// Start starts redis-server from the PATH (extra arguments after the
// defaults) on a free loopback port, with dir for its files (log, none
// other: no persistence), and returns once it answers PING, within 10s or
// before ctx ends. It returns ErrNotFound if there is no redis-server.
// The caller kills it with Kill.
func Start(ctx context.Context, dir string, args ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	s := &Server{bin: bin, dir: dir}
	// A free port may be taken between finding it and redis-server binding
	// it: try a few.
	for range 5 {
		var port int
		if port, err = FreePort(); err != nil {
			break
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.start(ctx, args); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("redis-server did not start: %w", err)
}

// FreePort returns a loopback TCP port that nothing listened on a moment
// ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server on s.Addr and waits until it answers PING.
func (s *Server) start(ctx context.Context, args []string) error {
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
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if Ping(s.Addr) == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server on %s exited (its log is in %s)", s.Addr, s.dir)
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("redis-server on %s does not answer PING: %w", s.Addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// Ping sends PING to addr on a connection of its own and checks the
// answer.
func Ping(addr string) error {
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
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart kills the server and starts it again, empty, on the same port.
func (s *Server) Restart(ctx context.Context, args ...string) error {
	s.Kill()
	var err error
	for range 3 { // the port is ours, but its last connections may linger
		if err = s.start(ctx, args); err == nil {
			return nil
		}
	}
	return fmt.Errorf("redis-server did not restart: %w", err)
}

// Freeze stops the server (SIGSTOP): its connections stay open and nothing
// answers, as a Redis stuck or behind a dead link. Thaw resumes it.
func (s *Server) Freeze() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a server frozen by Freeze.
func (s *Server) Thaw() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }
