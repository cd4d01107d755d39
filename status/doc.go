// Package status serves a live status page for every policy of a
// [registry.Registry]: the modern equivalent of the Hystrix dashboard, as an
// [http.Handler] to mount beside net/http/pprof.
//
// # Mounting
//
// [NewHandler] returns a handler that serves its pages at paths relative to
// where it is mounted, and the page uses relative URLs only, so it works
// under any prefix. Mount it under a path ending in a slash, and strip the
// prefix without that slash:
//
//	h, err := status.NewHandler(reg)
//	if err != nil { … }
//	mux.Handle("/debug/seawall/", http.StripPrefix("/debug/seawall", h))
//
// The page is then at /debug/seawall/ (the ServeMux redirects
// /debug/seawall there). Mounted at the root of a server of its own, no
// StripPrefix is needed.
//
// # URLs
//
// Relative to the mount point:
//
//	GET  ./                                  the page: one HTML document, no external assets
//	GET  ./api/snapshot                      the policies now, as JSON
//	GET  ./api/history                       recent samples of their counters, as JSON
//	POST ./api/breaker/{name}/force-open     operator actions, only with WithActions;
//	POST ./api/breaker/{name}/disable          for a breaker group's member, add
//	POST ./api/breaker/{name}/reset            ?key={key}
//
// GET ./api/snapshot answers the [registry.Snapshot] of the moment, as
// encoding/json writes it (content type application/json):
//
//	{"time": "2026-12-02T01:17:46.5Z",
//	 "policies": [
//	   {"name": "accounts", "kind": "breaker",
//	    "breaker": {"state": "open", "calls": 120, "successes": 80, "failures": 40,
//	                "rejections": 7, "probeIn": 420000000, …}},
//	   {"name": "accounts.retry", "kind": "retry", "retry": {"retries": 12, …}},
//	   …]}
//
// Each policy has its name, its kind (a [registry.Kind]) and its Metrics in
// the one field its kind names (breaker, breakerGroup, retry, budget,
// bulkhead, adaptive, rateLimit, throttle); durations are integer
// nanoseconds.
//
// GET ./api/history answers a [History]: the sampling interval and size of
// the ring, and its samples, oldest first, each the time it was taken and,
// per policy, the counters the page draws as per-second rates (a
// [Counters]; fields that are zero are left out):
//
//	{"interval": 1000000000, "size": 300,
//	 "samples": [
//	   {"time": "2026-12-02T01:17:45.5Z",
//	    "policies": [{"name": "accounts", "successes": 75, "failures": 38, "rejections": 2}, …]},
//	   …]}
//
// # History without a goroutine
//
// The handler starts no goroutine. It keeps a bounded ring of samples
// (by default one per second over the last five minutes, see
// [WithHistory]) and takes a sample while it answers a request, when at
// least the interval has passed since the last one. An open page polls
// every second, which keeps the ring filled; while nobody looks, nothing
// is sampled, and the page's rates average over the gap.
//
// # Operator actions
//
// The handler is read-only unless made [WithActions]: then a POST to
// ./api/breaker/{name}/force-open, /disable or /reset calls the breaker's
// ForceOpen, Disable or Reset (for a member of a breaker group, the one
// named by ?key=), and the page shows a button for each. Actions are
// protected against cross-site request forgery by
// [http.CrossOriginProtection]: a browser's cross-origin POST is refused
// with 403 ([WithTrustedOrigin] admits another origin). Requests without
// the browser's headers (curl, scripts) are admitted: protect the mount
// point as pprof's should be, by listening on a private address or
// wrapping the handler with authentication. Without WithActions, the
// action URLs answer 404 and the page says "operator actions are off".
package status
