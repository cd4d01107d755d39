package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// errNoRedis is startRedis's error when there is no redis-server to start.
var errNoRedis = errors.New("redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or pass -redis ADDR")

// redisServer is a redis-server process of the demo's own: on a free
// loopback port, with no persistence (--save "" --appendonly no), its
// files in a temporary directory.
type redisServer struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	done chan struct{} // closed when the process has exited
}

// startRedis starts a redis-server from the PATH and waits until it
// answers PING. It returns errNoRedis if there is none. The caller stops
// it with Stop.
func startRedis(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	dir, err := os.MkdirTemp("", "retrystorm-redis-")
	if err != nil {
		return nil, err
	}
	// A free port may be taken between finding it and redis-server
	// binding it: try a few.
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		s := &redisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
		if err = s.start(ctx, bin); err == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", err)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin on s.Addr and waits until it answers PING, for 10s at
// most.
func (s *redisServer) start(ctx context.Context, bin string) error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(bin,
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", "redis.log", "--loglevel", "warning", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if ping(s.Addr) == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on %s exited (see %s)", s.Addr, s.dir)
		case <-ctx.Done():
			s.kill()
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

// kill kills the process and waits for it to exit.
func (s *redisServer) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Stop stops the server (it keeps nothing: no persistence) and removes
// its directory.
func (s *redisServer) Stop() {
	s.kill()
	os.RemoveAll(s.dir)
}
