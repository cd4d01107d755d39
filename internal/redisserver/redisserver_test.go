package redisserver

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServer(t *testing.T) {
	s, err := Start(context.Background(), t.TempDir())
	if errors.Is(err, ErrNotFound) && os.Getenv("SEAWALL_REQUIRE_REDIS") != "1" {
		t.Skip("redis-server is not on the PATH (apt-get install redis-server; SEAWALL_REQUIRE_REDIS=1 makes this a failure)")
	}
	require.NoError(t, err)
	t.Cleanup(s.Kill)
	require.NoError(t, Ping(s.Addr))

	s.Freeze()
	assert.Error(t, Ping(s.Addr), "a frozen server answers nothing")
	s.Thaw()
	require.NoError(t, Ping(s.Addr))

	require.NoError(t, s.Restart(context.Background()))
	require.NoError(t, Ping(s.Addr), "back on the same port")
	s.Kill()
	assert.Error(t, Ping(s.Addr))
	s.Kill() // a second Kill does nothing
}

func TestNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Start(context.Background(), t.TempDir())
	assert.ErrorIs(t, err, ErrNotFound)
}
