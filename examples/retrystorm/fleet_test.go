package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seawall-go/seawall/examples/retrystorm/storm"
)

// needRedis skips t if there is no redis-server on the PATH, or fails it
// if SEAWALL_REQUIRE_REDIS=1 (as .ci/run sets).
func needRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("SEAWALL_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server is not on the PATH, and SEAWALL_REQUIRE_REDIS=1 requires it: %v", err)
		}
		t.Skip("redis-server is not on the PATH: skipping the fleet run against a real Redis " +
			"(apt-get install redis-server; SEAWALL_REQUIRE_REDIS=1 makes this a failure)")
	}
}

// TestRunFleet runs the fleet variant for real: the program starts its
// own redis-server, the replicas of (3) share a bucket in it through
// redisrate, and the run is on the real clock, 5s of it. It holds the run
// to the program's claim: during the spike, the shared limit keeps what
// the replicas admit, all together, within the capacity (the bucket's
// bound: Rate × 1s + Burst in any second, plus a tolerance), where the
// same limit copied to each replica lets more through.
//
// The tolerance: the replicas count an admission when Redis's answer
// comes back, not when Redis decided it, so a second as counted may hold
// the decisions of a second and a round trip; a round trip is at most the
// limiter's Timeout (5ms; slower calls go to the fallback), so each edge
// of the window adds at most Rate × 5ms (5), 10 in all. The local
// fallback's admissions, which Redis does not count, are added as they
// were (none, when Redis answers in time). If the self-check says the
// machine was too busy, the figures describe the machine and only the
// run's completion is checked.
func TestRunFleet(t *testing.T) {
	needRedis(t)
	defer goleak.VerifyNone(t)
	var out, errs bytes.Buffer
	err := run([]string{"-fleet", "-format", "json", "-warmup", "1s", "-trigger-for", "2s", "-length", "5s", "-allow-busy"}, &out, &errs)
	require.NoError(t, err, "stderr: %s", errs.String())

	var got struct {
		Scenario  storm.Scenario       `json:"scenario"`
		Results   []*storm.FleetResult `json:"results"`
		Redis     redisSummary         `json:"redis"`
		Untrusted []string             `json:"untrusted"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Len(t, got.Results, 3)
	copied, shared := got.Results[0], got.Results[2]
	require.Equal(t, storm.Copied, copied.Variant)
	require.Equal(t, storm.Shared, shared.Variant)
	assert.True(t, got.Redis.Started, "the program started its own redis-server")
	assert.Equal(t, copied.Result.Metrics.Requests, shared.Result.Metrics.Requests, "the same arrivals")
	if len(got.Untrusted) > 0 {
		t.Skipf("the self-check distrusts this run, so its figures describe the machine, not the limits: %v", got.Untrusted)
	}
	// After the self-check: on a machine too busy for Redis to answer in
	// its 5ms, the fallback takes the decisions and the check says so. A
	// trusted run in which Redis decided nothing would be a wiring bug.
	assert.Positive(t, got.Redis.Redis, "Redis decided (3)'s attempts")

	s := got.Scenario
	capacity := s.Capacity()
	bound := int(capacity) + shared.Burst + 2*int(capacity*0.005) + int(got.Redis.FallbackAdmitted)
	t.Logf("busiest second: (1) %d, (3) %d, bound %d; admitted/s in the spike: (1) %.0f, (3) %.0f; fallback admitted %d",
		copied.Peak, shared.Peak, bound, copied.AdmittedRate, shared.AdmittedRate, got.Redis.FallbackAdmitted)
	assert.LessOrEqual(t, shared.Peak, bound, "(3): the shared limit holds the fleet to the capacity in every second")
	assert.LessOrEqual(t, shared.AdmittedRate*s.TriggerFor.Seconds(), capacity*s.TriggerFor.Seconds()+float64(bound)-capacity,
		"(3): the shared limit holds the fleet to the capacity over the spike")
	assert.Greater(t, copied.Peak, bound, "(1): the limit copied to each replica lets more than the capacity through")
}

// TestRunFleetWithoutRedis checks the way out when there is no
// redis-server to start: a message that says how to get one.
func TestRunFleetWithoutRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errs bytes.Buffer
	err := run([]string{"-fleet"}, &out, &errs)
	require.ErrorIs(t, err, errNoRedis)
	assert.Contains(t, err.Error(), "apt-get install redis-server")
	assert.Contains(t, err.Error(), "brew install redis")
	assert.Contains(t, err.Error(), "-redis ADDR")
	assert.Empty(t, out.String(), "nothing runs")
}

// TestRunFleetRejectsBadFlags checks the flags that -fleet does not take,
// and those that need it.
func TestRunFleetRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-fleet", "-http"},
		{"-fleet", "-strategies", "a"},
		{"-fleet", "-status", "localhost:0"},
		{"-fleet", "-svg", "x.svg"},
		{"-fleet", "-replicas", "0"},
		{"-fleet", "-redis", "127.0.0.1:1"},
		{"-replicas", "3"},
		{"-redis", "localhost:6379"},
	} {
		var out, errs bytes.Buffer
		assert.Error(t, run(args, &out, &errs), "%v", args)
		assert.Empty(t, out.String(), "%v: nothing runs", args)
	}
}
