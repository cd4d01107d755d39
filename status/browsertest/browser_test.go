package browsertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fallback"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/status"
	"github.com/seawall-go/seawall/throttle"
	"github.com/seawall-go/seawall/timeout"
)

// screenshot is where SEAWALL_UPDATE_SCREENSHOT=1 writes the page's
// screenshot, from this folder.
const screenshot = "../../docs/status.png"

// chromium returns the path of a Chromium to drive, or skips the test
// (fails it with SEAWALL_REQUIRE_BROWSER=1) when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SEAWALL_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("SEAWALL_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium found: apt-get install chromium, or set SEAWALL_CHROMIUM"
	if os.Getenv("SEAWALL_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + " (SEAWALL_REQUIRE_BROWSER=1)")
	}
	t.Skip(msg)
	return ""
}

// fleet is the registry the page shows: the policies of a service calling
// its dependencies, with traffic going through them.
type fleet struct {
	reg      *registry.Registry
	accounts *breaker.Breaker // closed; the test forces it open with the page's button
	payments *breaker.Breaker // the test forces it open directly
	search   *breaker.Breaker // tripped open by failures
	hosts    *breaker.Group   // one key tripped open by failures
	retry    *retry.Retry
	pool     *bulkhead.Bulkhead
	login    *ratelimit.Limiter
	adaptive *adaptive.Limiter
	throttle *throttle.Throttle
	timeout  *timeout.Timeout
	fallback *fallback.Fallback[string]
	faults   *fault.Injector
	hedge    *hedge.Hedge
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var f fleet
	var err error
	f.reg, err = registry.New()
	must(err)
	f.accounts, err = breaker.New(breaker.Config{ConsecutiveFailures: 50})
	must(err)
	f.payments, err = breaker.New(breaker.Config{})
	must(err)
	f.search, err = breaker.New(breaker.Config{ConsecutiveFailures: 5, OpenDuration: 20 * time.Second})
	must(err)
	f.hosts, err = breaker.NewGroup(breaker.Config{ConsecutiveFailures: 5, OpenDuration: 20 * time.Second}, 64)
	must(err)
	f.retry, err = retry.New(retry.Config{MaxAttempts: 3, Delay: time.Millisecond, MaxDelay: 2 * time.Millisecond})
	must(err)
	f.pool, err = bulkhead.New(bulkhead.Config{MaxConcurrent: 10, MaxWaiting: 5})
	must(err)
	f.login, err = ratelimit.New(ratelimit.Config{Rate: 20, Burst: 5})
	must(err)
	f.adaptive, err = adaptive.New(adaptive.Config{})
	must(err)
	f.throttle, err = throttle.New(throttle.Config{})
	must(err)
	f.timeout, err = timeout.New(timeout.Config{Timeout: 5 * time.Millisecond})
	must(err)
	f.fallback, err = fallback.New(fallback.Config[string]{Fallback: func(context.Context, error) (string, error) { return "cached", nil }})
	must(err)
	f.faults, err = fault.New(fault.Config{Enabled: true, ErrorRate: 0.2})
	must(err)
	f.hedge, err = hedge.New(hedge.Config{Delay: 2 * time.Millisecond})
	must(err)
	for _, p := range []struct {
		name string
		v    any
	}{
		{"accounts", f.accounts}, {"payments", f.payments}, {"search", f.search},
		{"hosts", f.hosts}, {"accounts.retry", f.retry}, {"accounts.pool", f.pool},
		{"login.limit", f.login}, {"search.adaptive", f.adaptive}, {"payments.throttle", f.throttle},
		{"search.timeout", f.timeout}, {"profile.fallback", f.fallback}, {"gameday", f.faults}, {"search.hedge", f.hedge},
	} {
		must(f.reg.Register(p.name, p.v))
	}
	return &f
}

var errBoom = errors.New("boom")

// tick sends one round of traffic through the policies: mostly successes,
// some failures, a dependency that always fails, and more logins than the
// limiter allows.
func (f *fleet) tick(ctx context.Context, rng *rand.Rand) {
	ok := func(context.Context) error { return nil }
	flaky := func(p float64) func(context.Context) error {
		return func(context.Context) error {
			if rng.Float64() < p {
				return errBoom
			}
			return nil
		}
	}
	for range 3 {
		_ = f.accounts.Do(ctx, flaky(0.08))
		_ = f.retry.Do(ctx, flaky(0.3))
		_ = f.pool.Do(ctx, ok)
		_ = f.adaptive.Do(ctx, ok)
		_ = f.hosts.Do(ctx, []string{"eu-west-1", "us-east-1"}[rng.IntN(2)], flaky(0.05))
	}
	_ = f.payments.Do(ctx, flaky(0.02))
	_ = f.search.Do(ctx, flaky(1))
	_ = f.hosts.Do(ctx, "ap-south-1", flaky(1))
	_ = f.throttle.Do(ctx, func(context.Context) error {
		if rng.Float64() < 0.6 {
			return seawall.WithRetryAfter(seawall.NewRejection("payments: overloaded"), 50*time.Millisecond)
		}
		return nil
	})
	f.login.Allow()
	f.login.Allow()
	_ = f.timeout.Do(ctx, func(ctx context.Context) error {
		if rng.Float64() < 0.1 {
			<-ctx.Done() // a slow call, ended by the timeout
			return ctx.Err()
		}
		return nil
	})
	_, _ = f.fallback.Get(ctx, func(context.Context) (string, error) {
		if rng.Float64() < 0.2 {
			return "", errBoom
		}
		return "fresh", nil
	})
	_ = f.faults.Do(ctx, ok)
	slow := rng.Float64() < 0.1 // decided before the call: the attempts run on two goroutines
	var first atomic.Bool
	_ = f.hedge.Do(ctx, func(ctx context.Context) error {
		if slow && first.CompareAndSwap(false, true) {
			select { // a slow first attempt, which a hedge beats
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	})
}

// traffic runs tick every 20ms until the test ends.
func (f *fleet) traffic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			f.tick(ctx, rng)
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// sentinel is an error the test logs on purpose, to know that the
// listener hears the page.
const sentinel = "browsertest-sentinel"

// consoleErrors collects what the page logged as errors; heard is closed
// when the sentinel arrives.
type consoleErrors struct {
	mu    sync.Mutex
	msgs  []string
	heard chan struct{}
	once  sync.Once
}

// listen is the tab's listener (chromedp.WithListener, the successor of
// chromedp.ListenTarget that hears the tab from its start): it keeps the
// exceptions thrown and the errors logged. It runs in chromedp's read
// loop, so it only appends under a lock.
func (c *consoleErrors) listen(ev any) {
	{
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			msg = "console.error: " + strings.Join(parts, " ")
		default:
			return
		}
		if strings.Contains(msg, sentinel) {
			c.once.Do(func() { close(c.heard) })
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, msg)
		c.mu.Unlock()
	}
}

func (c *consoleErrors) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// waitFor polls the page until the JavaScript expression is true, for at
// most d: the page refreshes every second, so a change shows within one
// refresh.
func waitFor(expr string, d time.Duration) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := poll(ctx, t); err != nil {
			return chromedp.Void{}, fmt.Errorf("waiting %v for %s: %w", d, expr, err)
		}
		return chromedp.Void{}, nil
	}
}

// stateIs is an expression true when the named breaker's row shows state.
func stateIs(name, state string) string {
	return fmt.Sprintf(`(document.querySelector('tr[data-name=%q] .state') || {}).textContent === %q`, name, state)
}

// click clicks a breaker's action button twice: the first click arms it,
// the second acts.
func click(name, action string) chromedp.Action[chromedp.Void] {
	sel := chromedp.CSS(fmt.Sprintf(`tr[data-name=%q] button[data-action=%q]`, name, action))
	return chromedp.Steps(chromedp.Click(sel), chromedp.Click(sel))
}

func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	start := time.Now()

	f := newFleet(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		f.tick(context.Background(), rng)
	}
	// Three calls hold a slot of the pool while the page is open.
	for range 3 {
		if !f.pool.TryAcquire() {
			t.Fatal("the pool is full")
		}
	}
	t.Cleanup(func() {
		for range 3 {
			f.pool.Release()
		}
	})
	f.traffic(t)

	h, err := status.NewHandler(f.reg, status.WithActions())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/seawall/", http.StripPrefix("/debug/seawall", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// Chromium's background connections (updates, sync, QUIC probes) are
	// refused on a closed network; these flags keep it from trying.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	console := consoleErrors{heard: make(chan struct{})}
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithListener(console.listen))
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v (console: %q)", what, err, console.get())
		}
	}
	run("load the page",
		chromedp.Navigate(srv.URL+"/debug/seawall/"),
		waitFor(stateIs("accounts", "closed"), 5*time.Second))
	launched := time.Since(start)

	mode, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#mode")))
	if err != nil {
		t.Fatal(err)
	}
	footer, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("footer")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(footer, "data: GET ./api/snapshot") {
		t.Errorf("footer %q does not document the endpoint", footer)
	}
	if strings.Contains(mode, "off") {
		t.Errorf("mode %q: actions are on", mode)
	}
	run("the tripped breaker shows open", waitFor(stateIs("search", "open"), 5*time.Second))

	// Through the page: the button forces "accounts" open.
	run("force accounts open with the button",
		click("accounts", "force-open"),
		waitFor(stateIs("accounts", "forced-open"), 3*time.Second))
	if s := f.accounts.State(); s != breaker.ForcedOpen {
		t.Errorf("accounts is %v after the button, want forced-open", s)
	}
	// Directly: the page shows it within a refresh.
	f.payments.ForceOpen()
	run("payments forced open directly shows",
		waitFor(stateIs("payments", "forced-open"), 3*time.Second))
	// A group's member, by key.
	run("force a group member open by key",
		chromedp.SendKeys(chromedp.CSS(`tr[data-name="hosts"] input.key`), "us-east-1"),
		click("hosts", "force-open"),
		waitFor(`(document.querySelector('tr[data-name="hosts"] [data-state="forced-open"]') || {}).textContent === 'forced-open 1'`, 3*time.Second))
	if s := f.hosts.Get("us-east-1").State(); s != breaker.ForcedOpen {
		t.Errorf("hosts[us-east-1] is %v after the button, want forced-open", s)
	}
	// Back to closed with the reset button.
	run("reset accounts with the button",
		click("accounts", "reset"),
		waitFor(stateIs("accounts", "closed"), 3*time.Second))

	// Sparklines that show something: a few seconds of samples, more for
	// the picture in the docs.
	update := os.Getenv("SEAWALL_UPDATE_SCREENSHOT") == "1"
	points := 5
	if update {
		points = 15
	}
	run("sparklines fill in",
		waitFor(fmt.Sprintf(`(() => { const p = document.querySelector('tr[data-name="accounts"] polyline');
			return p && p.getAttribute('points').split(' ').length >= %d; })()`, points), time.Duration(points+10)*time.Second))

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "status.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
	if update {
		if err := os.WriteFile(screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", screenshot)
	}

	// The listener hears the page: a sentinel error logged on purpose
	// arrives, after everything the page logged before it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`console.error(`+fmt.Sprintf("%q", sentinel)+`), true`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-console.heard:
	case <-time.After(5 * time.Second):
		t.Fatal("the console listener did not hear the sentinel error")
	}
	if msgs := console.get(); len(msgs) > 0 {
		t.Fatalf("the page logged JavaScript errors: %q", msgs)
	}
	t.Logf("browser launched and page loaded in %v; test took %v", launched.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
