package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/seawall-go/seawall/examples/retrystorm/storm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The scenario itself is tested, in virtual time, in package storm; run
// runs it on the real clock, so only its refusals, and that it runs over
// real HTTP, are tested here.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-strategies", "x"},
		{"-format", "xml"},
		{"-trigger", "flood"},
		{"-factor", "0"},
		{"-callers", "0"},
		{"-speed", "0"},
		{"-warmup", "40s"},
		{"-no-such-flag"},
	} {
		var out, errs bytes.Buffer
		assert.Error(t, run(args, &out, &errs), "%v", args)
		assert.Empty(t, out.String(), "%v: nothing runs", args)
	}
}

func TestRunHelp(t *testing.T) {
	var out, errs bytes.Buffer
	assert.NoError(t, run([]string{"-h"}, &out, &errs), "-h is not an error")
	assert.Empty(t, out.String(), "nothing runs")
	assert.Contains(t, errs.String(), "-strategies", "the usage lists the flags")
	assert.Contains(t, errs.String(), "-http", "the usage lists -http")
}

// TestRunHTTP runs a short storm over real loopback HTTP (h2c servers,
// httpmw clients and middleware) with backoff alone (c) and with every
// defence (f). Real sockets and the real clock make the numbers depend on
// how busy the machine is, so it checks only what holds whatever the load:
// the run completes over the wire, both strategies got the same arrivals,
// every request made at least one attempt and nothing leaks. The claims
// themselves are checked over HTTP in virtual time, on an in-memory
// network, by storm's TestDefaultScenarioOverHTTP.
func TestRunHTTP(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out, errs bytes.Buffer
	err := run([]string{
		"-http", "-strategies", "c,f", "-format", "json", "-svg", "",
		"-workers", "3", "-rate", "200", "-callers", "4",
		"-warmup", "500ms", "-trigger-for", "500ms", "-length", "1.5s", "-speed", "1", "-allow-busy",
	}, &out, &errs)
	require.NoError(t, err, "stderr: %s", errs.String())

	var got struct {
		Scenario storm.Scenario `json:"scenario"`
		Results  []struct {
			Strategy     string        `json:"strategy"`
			Metrics      storm.Metrics `json:"metrics"`
			AttemptsSent uint64        `json:"attemptsSent"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.True(t, got.Scenario.HTTP, "the run was over HTTP")
	require.Len(t, got.Results, 2)
	c, f := got.Results[0], got.Results[1]
	require.Equal(t, "c", c.Strategy)
	require.Equal(t, "f", f.Strategy)
	assert.Positive(t, c.Metrics.Requests)
	assert.Equal(t, c.Metrics.Requests, f.Metrics.Requests, "the same arrivals")
	assert.GreaterOrEqual(t, c.AttemptsSent, uint64(c.Metrics.Requests), "(c) has no breaker: every request was sent")
}

// TestRunSaysWhenUntrusted checks the self-check's way out: a run whose
// figures cannot be trusted says so at the end of its output, and fails
// unless -allow-busy. The run is made untrustworthy by a scenario, not by
// a busy machine: one worker whose mean service time is close to the
// attempt timeout fails a third of the warm-up's requests with no retries.
func TestRunSaysWhenUntrusted(t *testing.T) {
	defer goleak.VerifyNone(t)
	args := []string{
		"-strategies", "a", "-svg", "", "-workers", "1", "-service-time", "50ms", "-attempt-timeout", "60ms",
		"-rate", "15", "-callers", "1", "-warmup", "1s", "-trigger-for", "100ms", "-length", "1.2s",
	}
	var out, errs bytes.Buffer
	err := run(args, &out, &errs)
	require.Error(t, err, "an untrusted run fails")
	assert.ErrorIs(t, err, errBusy)
	assert.Contains(t, out.String(), "SELF-CHECK FAILED")
	assert.Contains(t, out.String(), "(a) served")

	out.Reset()
	require.NoError(t, run(append(args, "-allow-busy"), &out, &errs), "-allow-busy exits 0")
	assert.Contains(t, out.String(), "SELF-CHECK FAILED", "and still says so")
}

// TestServeStatus checks what -status does: it serves the status page of a
// registry that the scenario's runs register in, at the URL it prints, and
// stops serving when told.
func TestServeStatus(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := storm.Default()
	var msg bytes.Buffer
	stop, err := serveStatus("127.0.0.1:0", &s, &msg)
	require.NoError(t, err)
	require.NotNil(t, s.Registry, "the runs register their policies")
	line := strings.TrimSpace(msg.String())
	require.True(t, strings.HasPrefix(line, "Status page: http://127.0.0.1:"), line)
	url := strings.Fields(line)[2]
	require.True(t, strings.HasSuffix(url, "/debug/seawall/"), url)

	for _, u := range []string{url, url + "api/snapshot"} {
		resp, err := http.Get(u)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, u)
	}
	http.DefaultClient.CloseIdleConnections()
	stop()
	_, err = http.Get(url)
	assert.Error(t, err, "no longer served")

	_, err = serveStatus("256.0.0.1:http", &s, &msg)
	assert.ErrorContains(t, err, "-status")
}
