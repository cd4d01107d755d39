package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/seawall-go/seawall/internal/redisserver"
)

// errNoRedis is startRedis's error when there is no redis-server to start.
var errNoRedis = errors.New("redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or pass -redis ADDR")

// redisServer is a redis-server process of the demo's own: on a free
// loopback port, with no persistence, its files in a temporary directory.
type redisServer struct {
	*redisserver.Server
	dir string
}

// startRedis starts a redis-server from the PATH and waits until it
// answers PING. It returns errNoRedis if there is none. The caller stops
// it with Stop.
func startRedis(ctx context.Context) (*redisServer, error) {
	dir, err := os.MkdirTemp("", "retrystorm-redis-")
	if err != nil {
		return nil, err
	}
	srv, err := redisserver.Start(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, redisserver.ErrNotFound) {
			return nil, errNoRedis
		}
		return nil, fmt.Errorf("-fleet: %w", err)
	}
	return &redisServer{Server: srv, dir: dir}, nil
}

// Stop stops the server (it keeps nothing: no persistence) and removes
// its directory.
func (s *redisServer) Stop() {
	s.Kill()
	os.RemoveAll(s.dir)
}

// ping sends PING to addr.
func ping(addr string) error { return redisserver.Ping(addr) }
