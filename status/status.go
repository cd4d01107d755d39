package status

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/seawall-go/seawall/registry"
)

// The history's defaults: a sample per second over the last five minutes.
const (
	DefaultHistorySize     = 300
	DefaultHistoryInterval = time.Second
)

// The bounds [WithHistory] accepts.
const (
	MaxHistorySize     = 3600
	MinHistoryInterval = 100 * time.Millisecond
	MaxHistoryInterval = time.Hour
)

//go:embed page.html
var page []byte

// A Handler serves the status page of a registry's policies, its JSON
// endpoints and, if made [WithActions], the breakers' operator actions
// (the URLs are listed in the package doc). Create it with [NewHandler];
// mount it as the package doc shows.
//
// The handler starts no goroutine: it reads the registry's snapshots when
// it answers a request, and keeps a bounded history of samples, taken
// while it answers requests at most once per interval ([WithHistory]).
//
// A Handler is safe for concurrent use by multiple goroutines.
type Handler struct {
	reg     *registry.Registry
	actions bool
	mux     *http.ServeMux
	page    []byte
	hist    history
}

// An Option configures a [Handler].
type Option func(*options) error

type options struct {
	actions bool
	size    int
	every   time.Duration
	trusted []string
}

// WithActions enables the operator actions: POST
// ./api/breaker/{name}/force-open, /disable and /reset (with ?key= for a
// breaker group's member), and their buttons on the page. Without it the
// handler is read-only.
func WithActions() Option {
	return func(o *options) error {
		o.actions = true
		return nil
	}
}

// WithHistory sets the history the handler keeps: size samples at most
// (0 keeps none), one per interval at most. The defaults are
// [DefaultHistorySize] and [DefaultHistoryInterval]. size must be in
// [0, MaxHistorySize] and every in [MinHistoryInterval,
// MaxHistoryInterval]. The history's memory is about size × the number of
// policies × 150 bytes.
func WithHistory(size int, every time.Duration) Option {
	return func(o *options) error {
		if size < 0 || size > MaxHistorySize {
			return fmt.Errorf("status: WithHistory size %d out of range [0, %d]", size, MaxHistorySize)
		}
		if every < MinHistoryInterval || every > MaxHistoryInterval {
			return fmt.Errorf("status: WithHistory interval %v out of range [%v, %v]", every, MinHistoryInterval, MaxHistoryInterval)
		}
		o.size, o.every = size, every
		return nil
	}
}

// WithTrustedOrigin admits operator actions posted by a browser from
// origin ("https://ops.example.com"), which cross-origin protection would
// otherwise refuse: for a page served through a proxy under another host
// name, say. It requires [WithActions].
func WithTrustedOrigin(origin string) Option {
	return func(o *options) error {
		if err := http.NewCrossOriginProtection().AddTrustedOrigin(origin); err != nil {
			return fmt.Errorf("status: WithTrustedOrigin(%q): %w", origin, err)
		}
		o.trusted = append(o.trusted, origin)
		return nil
	}
}

// NewHandler returns the handler of reg's status page, configured by opts.
// It fails if reg is nil or an option is misused.
func NewHandler(reg *registry.Registry, opts ...Option) (*Handler, error) {
	if reg == nil {
		return nil, errors.New("status: NewHandler with a nil registry")
	}
	o := options{size: DefaultHistorySize, every: DefaultHistoryInterval}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("status: NewHandler with a nil Option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if len(o.trusted) > 0 && !o.actions {
		return nil, errors.New("status: WithTrustedOrigin without WithActions: there is no action to trust it with")
	}
	h := &Handler{
		reg:     reg,
		actions: o.actions,
		mux:     http.NewServeMux(),
		hist:    newHistory(o.size, o.every),
	}
	mode := "off"
	if o.actions {
		mode = "on"
	}
	h.page = bytes.Replace(page, []byte(`data-actions="off"`), []byte(`data-actions="`+mode+`"`), 1)

	h.mux.HandleFunc("GET /{$}", h.servePage)
	h.mux.HandleFunc("GET /api/snapshot", h.serveSnapshot)
	h.mux.HandleFunc("GET /api/history", h.serveHistory)
	if o.actions {
		cop := http.NewCrossOriginProtection()
		for _, origin := range o.trusted {
			if err := cop.AddTrustedOrigin(origin); err != nil {
				return nil, fmt.Errorf("status: WithTrustedOrigin(%q): %w", origin, err)
			}
		}
		cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fail(w, http.StatusForbidden, "status: cross-origin request refused: operator actions are taken from the status page's own origin (see WithTrustedOrigin)")
		}))
		h.mux.Handle("/api/breaker/{name}/{action}", cop.Handler(http.HandlerFunc(h.serveAction)))
	} else {
		h.mux.HandleFunc("/api/breaker/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
			fail(w, http.StatusNotFound, "status: operator actions are off (the handler was made without WithActions)")
		})
	}
	h.mux.HandleFunc("/", h.serveOther)
	return h, nil
}

// ServeHTTP serves the request, its path relative to where the handler is
// mounted (see the package doc).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "" {
		// Mounted with a StripPrefix that took the trailing slash: the
		// page's own URL.
		r2 := *r
		u := *r.URL
		u.Path = "/"
		r2.URL = &u
		r = &r2
	}
	h.mux.ServeHTTP(w, r)
}

// serveOther answers what no other route takes: a wrong method on the
// page, or a path that is not served.
func (h *Handler) serveOther(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed, "status: the page is read with GET")
		return
	}
	fail(w, http.StatusNotFound, fmt.Sprintf("status: nothing at %q: the page is ./, its data ./api/snapshot and ./api/history", r.URL.Path))
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	h.hist.maybeSample(h.reg)
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The page's buttons change breakers: no other site may frame it.
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.Write(h.page)
}

func (h *Handler) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	s := h.reg.Snapshot()
	h.hist.record(&s)
	writeJSON(w, s)
}

func (h *Handler) serveHistory(w http.ResponseWriter, r *http.Request) {
	h.hist.maybeSample(h.reg)
	var buf bytes.Buffer
	h.hist.encode(&buf)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.Write(buf.Bytes())
}

// writeJSON writes v as the JSON response.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail(w, http.StatusInternalServerError, "status: encoding the response: "+err.Error())
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.Write(append(b, '\n'))
}

// fail answers an error: its status code and a message, as plain text.
func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
}
