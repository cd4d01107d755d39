package httpmw

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/fault"
)

func newInjector(t *testing.T, c fault.Config) *fault.Injector {
	t.Helper()
	inj, err := fault.New(c)
	require.NoError(t, err)
	return inj
}

// faultServer starts a real server with the fault middleware in front of
// a counting handler.
func faultServer(t *testing.T, inj *fault.Injector, resp FaultResponse, opts ...ServerOption) (*httptest.Server, *counting) {
	t.Helper()
	var next counting
	s := newServer(t, append(opts, WithFaultInjection(inj, resp))...)
	srv := httptest.NewServer(s.Handler(&next))
	t.Cleanup(srv.Close)
	return srv, &next
}

// faultGet sends a GET with its own connection, and returns the status and
// body, or the error.
func faultGet(t *testing.T, ctx context.Context, url string, header ...string) (int, http.Header, string, error) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

func TestFaultStatus(t *testing.T) {
	inj := newInjector(t, fault.Config{ErrorRate: 1})
	srv, next := faultServer(t, inj, FaultResponse{})
	ctx := context.Background()

	status, _, body, err := faultGet(t, ctx, srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 200, status, "off by default")
	assert.Equal(t, "ok", body)

	inj.Enable()
	status, h, body, err := faultGet(t, ctx, srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 503, status)
	assert.Empty(t, h.Get("Retry-After"), "no Retry-After unless configured: a failure, not a refusal")
	assert.Equal(t, "Service Unavailable\n", body)
	assert.Equal(t, int64(1), next.n.Load(), "a failed request never reaches the handler")

	inj.Disable()
	status, _, _, err = faultGet(t, ctx, srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 200, status)
	assert.Equal(t, fault.Metrics{Calls: 1, Selected: 1, Errors: 1}, inj.Metrics())
}

func TestFaultStatusRetryAfter(t *testing.T) {
	inj := newInjector(t, fault.Config{Enabled: true, ErrorRate: 1})
	srv, _ := faultServer(t, inj, FaultResponse{Status: 500, RetryAfter: 1500 * time.Millisecond})
	status, h, _, err := faultGet(t, context.Background(), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 500, status)
	assert.Equal(t, "2", h.Get("Retry-After"))
	assert.Equal(t, "1500", h.Get(RetryAfterMsHeader))

	// A hint on the Injector's own error wins.
	inj = newInjector(t, fault.Config{Enabled: true, ErrorRate: 1,
		Err: seawall.WithRetryAfter(seawall.NewRejection("overloaded"), 3*time.Second)})
	srv, _ = faultServer(t, inj, FaultResponse{RetryAfter: time.Second})
	status, h, _, err = faultGet(t, context.Background(), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 503, status)
	assert.Equal(t, "3", h.Get("Retry-After"))
}

func TestFaultAbortHTTP1(t *testing.T) {
	inj := newInjector(t, fault.Config{Enabled: true, ErrorRate: 1})
	srv, next := faultServer(t, inj, FaultResponse{Abort: true})
	_, _, _, err := faultGet(t, context.Background(), srv.URL)
	require.Error(t, err)
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "client sees the connection end: %v", err)

	inj.Disable()
	status, _, _, err := faultGet(t, context.Background(), srv.URL)
	require.NoError(t, err, "the server keeps serving")
	assert.Equal(t, 200, status)
	assert.Equal(t, int64(1), next.n.Load())
}

func TestFaultAbortHTTP2(t *testing.T) {
	inj := newInjector(t, fault.Config{Enabled: true, ErrorRate: 1})
	var next counting
	srv := httptest.NewUnstartedServer(newServer(t, WithFaultInjection(inj, FaultResponse{Abort: true})).Handler(&next))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := srv.Client()
	defer c.CloseIdleConnections()

	_, err := c.Get(srv.URL)
	require.Error(t, err, "the stream is reset")

	inj.Disable()
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 2, resp.ProtoMajor)
}

// TestFaultDelayClientDeadline: a delay longer than the client waits ends
// when the client gives up: the client sees its deadline, the handler never
// runs.
func TestFaultDelayClientDeadline(t *testing.T) {
	inj := newInjector(t, fault.Config{Enabled: true, LatencyRate: 1, Latency: time.Hour})
	srv, next := faultServer(t, inj, FaultResponse{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, _, err := faultGet(t, ctx, srv.URL)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	srv.Close() // waits for the handler, which returned when its client left
	assert.Zero(t, next.n.Load())
	assert.Equal(t, uint64(1), inj.Metrics().Delays)
}

// TestFaultDelayDeadline: with WithDeadline, the delay ends with the
// propagated deadline and the request is answered 504; a delay within the
// deadline lets the handler run.
func TestFaultDelayDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := newInjector(t, fault.Config{Enabled: true, LatencyRate: 1, Latency: 200 * time.Millisecond})
		var next counting
		h := newServer(t, WithDeadline(DefaultMaxTimeout), WithFaultInjection(inj, FaultResponse{})).Handler(&next)

		start := time.Now()
		w := serve(h, "192.0.2.1:1", TimeoutHeader, "100")
		assert.Equal(t, 504, w.Code)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.Zero(t, next.n.Load())

		start = time.Now()
		w = serve(h, "192.0.2.1:1", TimeoutHeader, "300")
		assert.Equal(t, 200, w.Code)
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		assert.Equal(t, int64(1), next.n.Load())
	})
}

func TestFaultHeader(t *testing.T) {
	ctx := context.Background()
	t.Run("ignored without the option", func(t *testing.T) {
		inj := newInjector(t, fault.Config{Enabled: true})
		srv, _ := faultServer(t, inj, FaultResponse{})
		status, _, _, err := faultGet(t, ctx, srv.URL, FaultAbortHeader, "500")
		require.NoError(t, err)
		assert.Equal(t, 200, status)
	})
	t.Run("ignored while disabled", func(t *testing.T) {
		inj := newInjector(t, fault.Config{})
		srv, _ := faultServer(t, inj, FaultResponse{Headers: true})
		status, _, _, err := faultGet(t, ctx, srv.URL, FaultAbortHeader, "500")
		require.NoError(t, err)
		assert.Equal(t, 200, status, "a header alone never turns faults on")
	})
	t.Run("honoured with the option while enabled", func(t *testing.T) {
		inj := newInjector(t, fault.Config{Enabled: true})
		srv, next := faultServer(t, inj, FaultResponse{Headers: true})
		status, _, _, err := faultGet(t, ctx, srv.URL, FaultAbortHeader, "429")
		require.NoError(t, err)
		assert.Equal(t, 429, status)
		_, _, _, err = faultGet(t, ctx, srv.URL, FaultAbortHeader, "abort")
		require.Error(t, err)
		for _, v := range []string{"200", "600", "5000", "x"} {
			status, _, _, err = faultGet(t, ctx, srv.URL, FaultAbortHeader, v)
			require.NoError(t, err)
			assert.Equal(t, 200, status, "a malformed value %q is ignored", v)
		}
		assert.Equal(t, int64(4), next.n.Load())
	})
}

func TestFaultOptionErrors(t *testing.T) {
	inj := newInjector(t, fault.Config{})
	for _, tc := range []struct {
		name string
		opt  ServerOption
		want string
	}{
		{"nil injector", WithFaultInjection(nil, FaultResponse{}), "httpmw: WithFaultInjection: nil injector"},
		{"status 200", WithFaultInjection(inj, FaultResponse{Status: 200}), "httpmw: WithFaultInjection: Status 200 out of range [400,599]"},
		{"negative RetryAfter", WithFaultInjection(inj, FaultResponse{RetryAfter: -time.Second}), "httpmw: WithFaultInjection: RetryAfter -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.opt)
			assert.Nil(t, s)
			assert.EqualError(t, err, tc.want)
		})
	}
}

func TestFaultDisabledAllocs(t *testing.T) {
	inj := newInjector(t, fault.Config{ErrorRate: 1})
	h := newServer(t, WithFaultInjection(inj, FaultResponse{})).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	assert.Zero(t, testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }))
}
