package status

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/internal/bubble"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
)

// policies is a registry holding one policy of each kind the page shows.
type policies struct {
	reg      *registry.Registry
	breaker  *breaker.Breaker
	group    *breaker.Group
	retry    *retry.Retry
	bulkhead *bulkhead.Bulkhead
	limiter  *ratelimit.Limiter
}

func newPolicies(t *testing.T) *policies {
	t.Helper()
	var p policies
	var err error
	p.reg, err = registry.New()
	require.NoError(t, err)
	p.breaker, err = breaker.New(breaker.Config{})
	require.NoError(t, err)
	p.group, err = breaker.NewGroup(breaker.Config{}, 8)
	require.NoError(t, err)
	p.retry, err = retry.New(retry.Config{})
	require.NoError(t, err)
	p.bulkhead, err = bulkhead.New(bulkhead.Config{})
	require.NoError(t, err)
	p.limiter, err = ratelimit.New(ratelimit.Config{Rate: 10})
	require.NoError(t, err)
	al, err := adaptive.New(adaptive.Config{})
	require.NoError(t, err)
	th, err := throttle.New(throttle.Config{})
	require.NoError(t, err)
	for name, v := range map[string]any{
		"accounts": p.breaker, "hosts": p.group, "accounts.retry": p.retry,
		"pool": p.bulkhead, "login": p.limiter, "adaptive": al, "throttle": th,
	} {
		require.NoError(t, p.reg.Register(name, v))
	}
	return &p
}

// serve answers req with h, as a server would, and returns the response.
func serve(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestNewHandlerMisuse(t *testing.T) {
	reg, err := registry.New()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		reg  *registry.Registry
		opts []Option
		want string
	}{
		{"nil registry", nil, nil, "nil registry"},
		{"nil option", reg, []Option{nil}, "nil Option"},
		{"negative history", reg, []Option{WithHistory(-1, time.Second)}, "size -1"},
		{"huge history", reg, []Option{WithHistory(MaxHistorySize+1, time.Second)}, "out of range"},
		{"fast history", reg, []Option{WithHistory(10, time.Millisecond)}, "interval 1ms"},
		{"bad origin", reg, []Option{WithActions(), WithTrustedOrigin("not a url")}, "WithTrustedOrigin"},
		{"trust without actions", reg, []Option{WithTrustedOrigin("https://ops.example.com")}, "without WithActions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHandler(tc.reg, tc.opts...)
			require.Error(t, err)
			assert.Nil(t, h)
			assert.True(t, strings.HasPrefix(err.Error(), "status: "), err.Error())
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = NewHandler(reg, WithHistory(0, time.Minute), WithActions(), WithTrustedOrigin("https://ops.example.com"))
	assert.NoError(t, err)
}

func TestSnapshotJSON(t *testing.T) {
	p := newPolicies(t)
	p.breaker.ForceOpen()
	p.group.Get("a").ForceOpen()
	p.group.Get("b")
	h, err := NewHandler(p.reg)
	require.NoError(t, err)

	rec := serve(h, "GET", "/api/snapshot")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))

	// The documented shape, read as a client without the Go types would.
	var raw struct {
		Time     time.Time        `json:"time"`
		Policies []map[string]any `json:"policies"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	assert.False(t, raw.Time.IsZero())
	byName := map[string]map[string]any{}
	var names []string
	for _, ps := range raw.Policies {
		name := ps["name"].(string)
		names = append(names, name)
		byName[name] = ps
	}
	assert.Equal(t, []string{"accounts", "accounts.retry", "accounts.retry.budget", "adaptive", "hosts", "login", "pool", "throttle"}, names)
	assert.Equal(t, "breaker", byName["accounts"]["kind"])
	assert.Equal(t, "forced-open", byName["accounts"]["breaker"].(map[string]any)["state"])
	states := byName["hosts"]["breakerGroup"].(map[string]any)["states"].(map[string]any)
	assert.EqualValues(t, 1, states["forced-open"])
	assert.EqualValues(t, 1, states["closed"])
	assert.Contains(t, byName["accounts.retry"]["retry"], "gaveUpBy")
	assert.Contains(t, byName["pool"]["bulkhead"], "inFlight")
	assert.EqualValues(t, 10, byName["login"]["rateLimit"].(map[string]any)["rate"])
	assert.Contains(t, byName["throttle"]["throttle"], "probability")
	assert.Equal(t, "adaptive", byName["adaptive"]["kind"])
	// (It does not decode back into a registry.Snapshot: breaker.Moves,
	// retry.GaveUpBy and breaker.StateCounts have no UnmarshalJSON.)
}

func TestPage(t *testing.T) {
	p := newPolicies(t)
	for _, tc := range []struct {
		opts []Option
		mode string
		note string
	}{
		{nil, `data-actions="off"`, "operator actions are off"},
		{[]Option{WithActions()}, `data-actions="on"`, "operator actions are on"},
	} {
		h, err := NewHandler(p.reg, tc.opts...)
		require.NoError(t, err)
		rec := serve(h, "GET", "/")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
		body := rec.Body.String()
		assert.Contains(t, body, tc.mode)
		assert.Contains(t, body, tc.note)
		assert.Contains(t, body, "data: GET <code>./api/snapshot</code>")
		// Offline: no asset from elsewhere, and only relative URLs, so
		// that any mount point works.
		for _, bad := range []string{`src="`, `href="http`, `href="/`, `fetch('/`, "url("} {
			assert.NotContains(t, body, bad)
		}
		assert.Contains(t, body, `fetch('api/snapshot'`)
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	p := newPolicies(t)
	h, err := NewHandler(p.reg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/debug/seawall/", http.StripPrefix("/debug/seawall", h))
	mux.Handle("/other/", http.StripPrefix("/other/", h)) // the slash stripped too

	for _, tc := range []struct {
		target string
		code   int
		ctype  string
	}{
		{"/debug/seawall/", http.StatusOK, "text/html; charset=utf-8"},
		{"/debug/seawall/api/snapshot", http.StatusOK, "application/json"},
		{"/debug/seawall/api/history", http.StatusOK, "application/json"},
		{"/debug/seawall", http.StatusTemporaryRedirect, ""}, // ServeMux's redirect to the subtree
		{"/other/", http.StatusOK, "text/html; charset=utf-8"},
		{"/debug/seawall/nothing", http.StatusNotFound, "text/plain; charset=utf-8"},
	} {
		rec := serve(mux, "GET", tc.target)
		assert.Equal(t, tc.code, rec.Code, tc.target)
		if tc.ctype != "" {
			assert.Equal(t, tc.ctype, rec.Header().Get("Content-Type"), tc.target)
		}
	}
	rec := serve(mux, "GET", "/debug/seawall")
	assert.Equal(t, "/debug/seawall/", rec.Header().Get("Location"))
	rec = serve(mux, "GET", "/debug/seawall/nothing")
	assert.Contains(t, rec.Body.String(), `status: nothing at "/nothing"`)
	rec = serve(mux, "POST", "/debug/seawall/")
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// history reads and decodes GET /api/history.
func getHistory(t *testing.T, h http.Handler) History {
	t.Helper()
	rec := serve(h, "GET", "/api/history")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var hist History
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &hist))
	return hist
}

func TestHistorySampledAtMostOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPolicies(t)
		h, err := NewHandler(p.reg, WithHistory(5, time.Second))
		require.NoError(t, err)

		// Requests every 300ms for 10s, each after a successful call: a
		// sample is taken at the first request and then at the first
		// request at least a second after the last sample.
		for range 34 {
			require.NoError(t, p.breaker.Do(context.Background(), func(context.Context) error { return nil }))
			serve(h, "GET", "/api/snapshot")
			bubble.Sleep(300 * time.Millisecond)
		}
		hist := getHistory(t, h)
		assert.Equal(t, time.Second, hist.Interval)
		assert.Equal(t, 5, hist.Size)
		require.Len(t, hist.Samples, 5, "the ring is bounded")
		var prev Sample
		for i, s := range hist.Samples {
			require.Len(t, s.Policies, 8)
			assert.Equal(t, "accounts", s.Policies[0].Name)
			if i > 0 {
				gap := s.Time.Sub(prev.Time)
				assert.Equal(t, 1200*time.Millisecond, gap, "samples ≥ 1s apart, on the first request after")
				// Four calls between two samples.
				assert.Equal(t, prev.Policies[0].Successes+4, s.Policies[0].Successes)
			}
			prev = s
		}
		// The newest sample is the last one taken: of the 34 requests, the
		// 1st, 5th, … 33rd took one, each after its own call.
		assert.Equal(t, uint64(33), prev.Policies[0].Successes)
	})
}

func TestHistoryFromPageAndHistoryRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPolicies(t)
		h, err := NewHandler(p.reg)
		require.NoError(t, err)
		assert.Empty(t, getHistory(t, mustHandler(t, p.reg, WithHistory(0, time.Second))).Samples, "no history kept")

		serve(h, "GET", "/") // opening the page samples
		hist := getHistory(t, h)
		require.Len(t, hist.Samples, 1, "the request for the history is within the second")
		bubble.Sleep(time.Second)
		hist = getHistory(t, h)
		require.Len(t, hist.Samples, 2)
		assert.Equal(t, time.Second, hist.Samples[1].Time.Sub(hist.Samples[0].Time))
		assert.Equal(t, DefaultHistorySize, hist.Size)
	})
}

func mustHandler(t *testing.T, reg *registry.Registry, opts ...Option) *Handler {
	t.Helper()
	h, err := NewHandler(reg, opts...)
	require.NoError(t, err)
	return h
}

func TestCountersOf(t *testing.T) {
	p := newPolicies(t)
	ctx := context.Background()
	require.NoError(t, p.breaker.Do(ctx, func(context.Context) error { return nil }))
	require.Error(t, p.breaker.Do(ctx, func(context.Context) error { return errors.New("boom") }))
	p.breaker.ForceOpen()
	require.ErrorIs(t, p.breaker.Do(ctx, func(context.Context) error { return nil }), breaker.ErrOpen)
	require.True(t, p.limiter.Allow())
	require.NoError(t, p.bulkhead.Do(ctx, func(context.Context) error { return nil }))

	snap := p.reg.Snapshot()
	got := map[string]Counters{}
	for i := range snap.Policies {
		got[snap.Policies[i].Name] = CountersOf(&snap.Policies[i])
	}
	assert.Equal(t, Counters{Successes: 1, Failures: 1, Rejections: 1}, got["accounts"])
	assert.Equal(t, Counters{Allowed: 1}, got["login"])
	assert.Equal(t, Counters{Admitted: 1}, got["pool"])

	// In JSON, the zero counters are left out.
	b, err := json.Marshal(SamplePolicy{Name: "login", Counters: got["login"]})
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"login","allowed":1}`, string(b))
}

func TestActionsOff(t *testing.T) {
	p := newPolicies(t)
	h := mustHandler(t, p.reg)
	for _, method := range []string{"POST", "GET", "PUT"} {
		for _, target := range []string{"/api/breaker/accounts/force-open", "/api/breaker/accounts/disable", "/api/breaker/hosts/reset?key=a"} {
			rec := serve(h, method, target)
			assert.Equal(t, http.StatusNotFound, rec.Code, method+" "+target)
			assert.Contains(t, rec.Body.String(), "status: operator actions are off")
		}
	}
	assert.Equal(t, breaker.Closed, p.breaker.State(), "the breaker is untouched")
	assert.Zero(t, p.group.Len(), "no group member made")
}

func TestActionsOn(t *testing.T) {
	p := newPolicies(t)
	p.group.Get("a")
	h := mustHandler(t, p.reg, WithActions(), WithTrustedOrigin("https://ops.example.com"))

	type step struct {
		method, target string
		header         []string
		code           int
		body           string // a part of the response's body
		state          breaker.State
		member         breaker.State // the group's "a"
	}
	same := []string{"Sec-Fetch-Site", "same-origin"}
	steps := []step{
		{"POST", "/api/breaker/accounts/force-open", same, 200, `"state":"forced-open"`, breaker.ForcedOpen, breaker.Closed},
		{"POST", "/api/breaker/accounts/disable", nil, 200, `"action":"disable"`, breaker.Disabled, breaker.Closed},
		{"POST", "/api/breaker/accounts/reset", nil, 200, `"state":"closed"`, breaker.Closed, breaker.Closed},
		{"GET", "/api/breaker/accounts/force-open", nil, 405, "status: force-open changes the breaker: POST it", breaker.Closed, breaker.Closed},
		{"PUT", "/api/breaker/accounts/force-open", nil, 405, "not PUT", breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/accounts/explode", nil, 404, `status: no action "explode"`, breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/nobody/force-open", nil, 404, `status: no policy named "nobody"`, breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/accounts.retry/force-open", nil, 404, `"accounts.retry" is a retry, not a breaker`, breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/accounts/force-open?key=a", nil, 400, "drop ?key=", breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/hosts/force-open", nil, 400, "name its member with ?key=", breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/hosts/force-open?key=zz", nil, 404, `holds no key "zz"`, breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/hosts/force-open?key=a", same, 200, `"key":"a"`, breaker.Closed, breaker.ForcedOpen},
		{"POST", "/api/breaker/hosts/reset?key=a", nil, 200, `"state":"closed"`, breaker.Closed, breaker.Closed},
		// Cross-site requests, refused whatever they ask.
		{"POST", "/api/breaker/accounts/force-open", []string{"Sec-Fetch-Site", "cross-site"}, 403, "status: cross-origin request refused", breaker.Closed, breaker.Closed},
		{"POST", "/api/breaker/hosts/force-open?key=a", []string{"Origin", "https://evil.example"}, 403, "status: cross-origin", breaker.Closed, breaker.Closed},
		// An origin trusted with WithTrustedOrigin is admitted.
		{"POST", "/api/breaker/accounts/force-open", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://ops.example.com"}, 200, `"state":"forced-open"`, breaker.ForcedOpen, breaker.Closed},
	}
	for _, s := range steps {
		rec := serve(h, s.method, "http://example.com"+s.target, s.header...)
		assert.Equal(t, s.code, rec.Code, "%s %s: %s", s.method, s.target, rec.Body.String())
		assert.Contains(t, rec.Body.String(), s.body, "%s %s", s.method, s.target)
		if s.code == 405 {
			assert.Equal(t, "POST", rec.Header().Get("Allow"))
		}
		if s.code == 200 {
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		}
		assert.Equal(t, s.state, p.breaker.State(), "%s %s", s.method, s.target)
		assert.Equal(t, s.member, p.group.Get("a").State(), "%s %s", s.method, s.target)
	}
	assert.Equal(t, 1, p.group.Len(), "no member made for an unknown key")

	// The result decodes as documented.
	rec := serve(h, "POST", "/api/breaker/hosts/disable?key=a")
	var res ActionResult
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res))
	assert.Equal(t, ActionResult{Name: "hosts", Key: "a", Action: "disable", State: breaker.Disabled}, res)
}

func TestEmptyRegistry(t *testing.T) {
	reg, err := registry.New()
	require.NoError(t, err)
	h := mustHandler(t, reg)
	rec := serve(h, "GET", "/api/snapshot")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `"policies":[]`)
	rec = serve(h, "GET", "/api/history")
	assert.Contains(t, rec.Body.String(), `"policies":[]`, "a list, never null, for the page to read")
}
