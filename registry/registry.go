package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall/adaptive"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/bulkhead"
	"github.com/seawall-go/seawall/fallback"
	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/retry"
	"github.com/seawall-go/seawall/throttle"
	"github.com/seawall-go/seawall/timeout"
)

// Kind is the kind of a registered policy, as metrics, logs, the status
// page and its JSON name it.
type Kind string

// The kinds of policies a Registry takes, and the types they are.
const (
	KindBreaker      Kind = "breaker"         // *breaker.Breaker
	KindBreakerGroup Kind = "breaker_group"   // *breaker.Group
	KindRetry        Kind = "retry"           // *retry.Retry
	KindBudget       Kind = "retry_budget"    // *retry.Budget
	KindBulkhead     Kind = "bulkhead"        // *bulkhead.Bulkhead
	KindAdaptive     Kind = "adaptive"        // *adaptive.Limiter
	KindRateLimit    Kind = "ratelimit"       // *ratelimit.Limiter, a SharedLimiter (*redisrate.Limiter)
	KindKeyedLimit   Kind = "keyed_ratelimit" // *ratelimit.Keyed, a keyed SharedLimiter (*redisrate.Keyed)
	KindThrottle     Kind = "throttle"        // *throttle.Throttle
	KindFault        Kind = "fault"           // *fault.Injector
	KindTimeout      Kind = "timeout"         // *timeout.Timeout
	KindFallback     Kind = "fallback"        // *fallback.Fallback[T], *fallback.Policy
	KindHedge        Kind = "hedge"           // *hedge.Hedge
)

// MaxNameLen is the longest name a policy may be registered under, in
// bytes.
const MaxNameLen = 128

// DefaultLimitChangeThreshold is the relative change of an adaptive limit,
// since the last one logged, that the logger reports (see
// [WithLimitChangeThreshold]).
const DefaultLimitChangeThreshold = 0.25

// A Registry names policies, so that telemetry (package otelseawall, in its
// own module), the status page (package status) and a logger can find them
// and tell them apart. The user creates it (there is no global registry)
// and registers each policy under a name, such as "accounts" or
// "accounts.retry".
//
// Registering is explicit and cheap: it adds nothing to any policy's
// success path, which keeps its counters in atomics as it does without a
// registry; readers take snapshots (the policies' Metrics) when they
// collect. Only slow paths (a breaker's transition, a call admitted after
// waiting in a queue, a call that retried, a budget running dry, an
// adaptive limit moving) are reported as [Event] values, to the logger
// ([WithLogger]) and to watchers ([Registry.Watch]).
//
// A policy belongs to one registry at most, under one name. Names are
// validated by [ValidName].
//
// A Registry is safe for concurrent use by multiple goroutines.
type Registry struct {
	mu       sync.Mutex
	byName   map[string]*entry
	list     atomic.Pointer[[]*entry] // sorted by name; replaced, never changed
	watchers atomic.Pointer[[]*watcher]

	log       *slog.Logger
	threshold float64
}

// An Option configures a Registry.
type Option func(*Registry) error

// WithLogger makes the registry log its policies' state changes through l:
// one record per breaker transition (the states, the cause and the counts
// that tripped it), per retry budget running dry and per budget allowing
// retries again, and per adaptive limit change beyond the threshold
// ([WithLimitChangeThreshold]); never one record per call. The attributes
// are named as the metrics are (see the README). Records are logged on the
// policy's slow path, by the goroutine that caused the change, outside the
// policy's locks.
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) error {
		if l == nil {
			return errors.New("registry: WithLogger(nil)")
		}
		r.log = l
		return nil
	}
}

// WithLimitChangeThreshold sets the relative change of an adaptive limit,
// since the value last logged, from which the logger reports it: 0.25 (the
// default) logs a limit that moved from 40 to 50 or to 30. It must be in
// (0, 10].
func WithLimitChangeThreshold(f float64) Option {
	return func(r *Registry) error {
		if !(f > 0 && f <= 10) {
			return fmt.Errorf("registry: WithLimitChangeThreshold(%v) out of range (0, 10]", f)
		}
		r.threshold = f
		return nil
	}
}

// New returns an empty registry configured by opts.
func New(opts ...Option) (*Registry, error) {
	r := &Registry{byName: make(map[string]*entry), threshold: DefaultLimitChangeThreshold}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	r.list.Store(new([]*entry))
	return r, nil
}

// A Policy is a registered policy: its name, its kind and the policy
// itself (a *breaker.Breaker for KindBreaker, and so on; see [Kind]).
type Policy struct {
	Name  string
	Kind  Kind
	Value any
}

type entry struct {
	Policy
	slot    *obs.Slot
	binding obs.Binding
	reg     *Registry
	owned   []string // names registered with it (a retry's budget), unregistered with it

	mu        sync.Mutex // guards the logging state below
	drySince  time.Time  // when the budget last ran dry; zero while it allows retries
	dryAt     uint64     // the budget's Exhausted count then
	loggedLim int        // the adaptive limit last logged
}

// ValidName reports whether name may name a policy, and if not, why: a
// name is 1 to MaxNameLen bytes of ASCII letters, digits, '.', '_' and '-',
// starting with a letter or a digit. Names are case-sensitive. Dots
// conventionally separate a component and its parts ("accounts.retry").
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("registry: empty name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("registry: name %.20q… is %d bytes long, more than %d", name, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("registry: name %q has %q at byte %d: a name is letters, digits, '.', '_' and '-', starting with a letter or digit", name, c, i)
		}
	}
	return nil
}

// kindOf returns the kind of a policy and its registration slot.
func kindOf(p any) (Kind, *obs.Slot, error) {
	var (
		k    Kind
		null bool
	)
	switch v := p.(type) {
	case *breaker.Breaker:
		k, null = KindBreaker, v == nil
	case *breaker.Group:
		k, null = KindBreakerGroup, v == nil
	case *retry.Retry:
		k, null = KindRetry, v == nil
	case *retry.Budget:
		k, null = KindBudget, v == nil
	case *bulkhead.Bulkhead:
		k, null = KindBulkhead, v == nil
	case *adaptive.Limiter:
		k, null = KindAdaptive, v == nil
	case *ratelimit.Limiter:
		k, null = KindRateLimit, v == nil
	case *ratelimit.Keyed:
		k, null = KindKeyedLimit, v == nil
	case *throttle.Throttle:
		k, null = KindThrottle, v == nil
	case *fault.Injector:
		k, null = KindFault, v == nil
	case *timeout.Timeout:
		k, null = KindTimeout, v == nil
	case *hedge.Hedge:
		k, null = KindHedge, v == nil
	case fallback.Metered:
		k, null = KindFallback, v.Registration() == nil // a nil *Fallback[T] has no slot
	case SharedLimiter:
		if null = v.Registration() == nil; !null { // a nil *redisrate.Limiter has no slot
			k = KindRateLimit
			if v.SharedLimitMetrics().Keyed {
				k = KindKeyedLimit
			}
		}
	default:
		return "", nil, fmt.Errorf("registry: cannot register a %T: not a seawall policy (breaker, breaker group, retry, retry budget, bulkhead, adaptive limiter, rate limiter, keyed rate limiter, shared rate limiter, throttle, fault injector, timeout, fallback or hedge)", p)
	}
	if null {
		return "", nil, fmt.Errorf("registry: cannot register a nil %T", p)
	}
	return k, p.(registrable).Registration(), nil
}

// A SharedLimiter is a rate limiter whose limit a fleet shares through a
// store, built in a module of its own so that the store's client stays out
// of other users' module graphs: *redisrate.Limiter and *redisrate.Keyed
// (module github.com/seawall-go/seawall/ratelimit/redisrate). A Registry
// takes one as KindRateLimit, or KindKeyedLimit if it is keyed; its
// snapshot is a RateLimitMetrics with Shared set. Only this repository's
// modules can implement it (Registration's result is opaque).
type SharedLimiter interface {
	Registration() *obs.Slot
	SharedLimitMetrics() SharedLimitMetrics
}

// registrable is what every policy a Registry takes has.
type registrable interface{ Registration() *obs.Slot }

// Register adds policy to r under name. policy is one of the types listed
// with [Kind]. A *retry.Retry brings its budget along, registered as
// name+".budget" unless the budget is registered already (a budget shared
// by several Retry values is registered once, with the first); it is
// unregistered with the Retry.
//
// Register fails, and changes nothing, if name is not valid ([ValidName]) or
// is taken in r, if policy is nil or of another type, or if policy is
// registered already, in r or in another registry.
func (r *Registry) Register(name string, policy any) error {
	if err := ValidName(name); err != nil {
		return err
	}
	kind, slot, err := kindOf(policy)
	if err != nil {
		return err
	}
	var budget *retry.Budget
	if rt, ok := policy.(*retry.Retry); ok {
		if b := rt.Budget(); b != nil && obs.Bound(b.Registration()) == nil {
			budget = b
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var bn string
	if budget != nil {
		// Checked first, so that a failure changes nothing.
		bn = name + ".budget"
		if err := ValidName(bn); err != nil {
			return fmt.Errorf("registry: the retry's budget: %w", err)
		}
		if old, ok := r.byName[bn]; ok {
			return fmt.Errorf("registry: the retry's budget: name %q is taken by a %s", bn, old.Kind)
		}
	}
	e, err := r.addLocked(name, kind, policy, slot)
	if err != nil {
		return err
	}
	if budget != nil {
		if _, err := r.addLocked(bn, KindBudget, budget, budget.Registration()); err != nil {
			r.removeLocked(e)
			return fmt.Errorf("registry: the retry's budget: %w", err)
		}
		e.owned = append(e.owned, bn)
	}
	r.publishLocked()
	return nil
}

// RegisterAll registers each of ps (by Name and Value; Kind is ignored)
// as Register would, all or none: if one fails, those registered before it
// are unregistered and its error is returned. A policy registered in r
// already, under any name, is skipped, so that a component and its user
// may both register a policy they share. This is how the middleware's
// WithRegistry options register a transport's or server's policies.
func (r *Registry) RegisterAll(ps ...Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var done []*entry
	undo := func() {
		for _, e := range done {
			r.removeLocked(e)
		}
	}
	for _, p := range ps {
		if err := ValidName(p.Name); err != nil {
			undo()
			return err
		}
		kind, slot, err := kindOf(p.Value)
		if err != nil {
			undo()
			return err
		}
		if b := obs.Bound(slot); b != nil {
			if o, ok := b.Owner.(*entry); ok && o.reg == r {
				continue
			}
		}
		e, err := r.addLocked(p.Name, kind, p.Value, slot)
		if err != nil {
			undo()
			return err
		}
		done = append(done, e)
		if rt, ok := p.Value.(*retry.Retry); ok {
			if b := rt.Budget(); b != nil && obs.Bound(b.Registration()) == nil {
				bn := p.Name + ".budget"
				err := ValidName(bn)
				var be *entry
				if err == nil {
					be, err = r.addLocked(bn, KindBudget, b, b.Registration())
				}
				if err != nil {
					undo()
					return fmt.Errorf("registry: the retry's budget: %w", err)
				}
				e.owned = append(e.owned, be.Name)
				done = append(done, be)
			}
		}
	}
	r.publishLocked()
	return nil
}

// A Part is a policy of a component and the suffix that names it under the
// component's name (".retry").
type Part struct {
	Suffix string
	Policy any
}

// Under names parts under name (name+Suffix), for RegisterAll, leaving out
// those whose Policy is nil or of a type a Registry does not take: the
// middleware's WithRegistry options list a transport's or a server's
// policies with it.
func Under(name string, parts ...Part) []Policy {
	var ps []Policy
	for _, p := range parts {
		if Registrable(p.Policy) {
			ps = append(ps, Policy{Name: name + p.Suffix, Value: p.Policy})
		}
	}
	return ps
}

// NameOf returns the name policy is registered under in r, if it is.
func (r *Registry) NameOf(policy any) (string, bool) {
	_, slot, err := kindOf(policy)
	if err != nil {
		return "", false
	}
	if b := obs.Bound(slot); b != nil {
		if o, ok := b.Owner.(*entry); ok && o.reg == r {
			return b.Name, true
		}
	}
	return "", false
}

// Registrable reports whether policy is of a type a Registry takes (see
// [Kind]) and not nil.
func Registrable(policy any) bool {
	_, _, err := kindOf(policy)
	return err == nil
}

func (r *Registry) addLocked(name string, kind Kind, policy any, slot *obs.Slot) (*entry, error) {
	if old, ok := r.byName[name]; ok {
		return nil, fmt.Errorf("registry: name %q is taken by a %s", name, old.Kind)
	}
	e := &entry{Policy: Policy{Name: name, Kind: kind, Value: policy}, slot: slot, reg: r}
	e.binding = obs.Binding{Owner: e, Name: name, Sink: (*sink)(r)}
	if l, ok := policy.(*adaptive.Limiter); ok {
		e.loggedLim = l.Limit()
	}
	if !obs.Claim(slot, &e.binding) {
		b := obs.Bound(slot)
		if o, ok := b.Owner.(*entry); ok && o.reg == r {
			return nil, fmt.Errorf("registry: this %s is registered already, as %q", kind, b.Name)
		}
		return nil, fmt.Errorf("registry: this %s is registered already, in another registry, as %q", kind, b.Name)
	}
	r.byName[name] = e
	return e, nil
}

// publishLocked replaces the sorted list readers see. r.mu must be held.
func (r *Registry) publishLocked() {
	list := make([]*entry, 0, len(r.byName))
	for _, e := range r.byName {
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b *entry) int { return strings.Compare(a.Name, b.Name) })
	r.list.Store(&list)
}

// Unregister removes the policy registered under name (and what it brought
// along: a Retry's budget), which may then be registered again, here or
// elsewhere. It reports whether name was registered.
func (r *Registry) Unregister(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byName[name]
	if !ok {
		return false
	}
	r.removeLocked(e)
	for _, n := range e.owned {
		if o, ok := r.byName[n]; ok {
			r.removeLocked(o)
		}
	}
	r.publishLocked()
	return true
}

func (r *Registry) removeLocked(e *entry) {
	delete(r.byName, e.Name)
	obs.Release(e.slot, &e.binding)
}

// Lookup returns the policy registered under name.
func (r *Registry) Lookup(name string) (Policy, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byName[name]; ok {
		return e.Policy, true
	}
	return Policy{}, false
}

// Len returns the number of registered policies.
func (r *Registry) Len() int { return len(*r.list.Load()) }

// Range calls f for each registered policy, in the order of their names,
// until f returns false. It takes no lock and allocates nothing: it visits
// the policies registered when it began. f may register and unregister.
func (r *Registry) Range(f func(Policy) bool) {
	for _, e := range *r.list.Load() {
		if !f(e.Policy) {
			return
		}
	}
}

// EventType is the type of an [Event].
type EventType string

// The types of events.
const (
	// StateChanged: a breaker (or a group's breaker) changed state;
	// Event.StateChange says how.
	StateChanged EventType = "state_changed"
	// Waited: a bulkhead or an adaptive limiter admitted a call after
	// Event.Duration in its queue.
	Waited EventType = "waited"
	// CallRetried: a call made Event.Retries retries and waited
	// Event.Duration in all between its attempts; Event.Reason is why it
	// gave up (a retry.Reason's name), or "" if it succeeded.
	CallRetried EventType = "call_retried"
	// BudgetExhausted: a retry budget refused a retry after allowing the one
	// before; BudgetRestored: it allowed one again.
	BudgetExhausted EventType = "budget_exhausted"
	BudgetRestored  EventType = "budget_restored"
	// LimitChanged: an adaptive limiter moved its limit (its estimate,
	// rounded, not the brief dips of its baseline measurements) from
	// Event.From to Event.To.
	LimitChanged EventType = "limit_changed"
)

// An Event is a state change or a slow-path fact of a registered policy.
type Event struct {
	Time   time.Time
	Policy string // the name it is registered under
	Kind   Kind
	Type   EventType

	StateChange breaker.StateChange // StateChanged; in a group, its Name is the member's key
	Duration    time.Duration       // Waited, CallRetried
	Retries     int                 // CallRetried
	Reason      string              // CallRetried
	From, To    int                 // LimitChanged
}

type watcher struct{ f func(Event) }

// Watch calls f with every event of the registered policies until the
// returned stop function is called. f runs on the policy's slow path, by
// the goroutine that caused the event, outside the policy's locks: it must
// be quick and must not block; it may call the policy. Several events may
// be delivered at once from different goroutines.
func (r *Registry) Watch(f func(Event)) (stop func()) {
	w := &watcher{f}
	r.mu.Lock()
	ws := append(slices.Clone(*r.loadWatchers()), w)
	r.watchers.Store(&ws)
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			ws := slices.DeleteFunc(slices.Clone(*r.loadWatchers()), func(x *watcher) bool { return x == w })
			r.watchers.Store(&ws)
			r.mu.Unlock()
		})
	}
}

func (r *Registry) loadWatchers() *[]*watcher {
	if ws := r.watchers.Load(); ws != nil {
		return ws
	}
	return new([]*watcher)
}

// sink is the obs.Sink of a Registry, kept off its method set.
type sink Registry

// Emit turns a policy's event into an Event for the logger and the
// watchers.
func (s *sink) Emit(b *obs.Binding, oe obs.Event) {
	r := (*Registry)(s)
	e, ok := b.Owner.(*entry)
	if !ok {
		return
	}
	ws := r.watchers.Load()
	if r.log == nil && (ws == nil || len(*ws) == 0) {
		return
	}
	ev := Event{Time: time.Now(), Policy: e.Name, Kind: e.Kind, Duration: oe.Duration}
	switch oe.Type {
	case obs.StateChanged:
		ev.Type = StateChanged
		ev.StateChange, _ = oe.Detail.(breaker.StateChange)
	case obs.Waited:
		ev.Type = Waited
	case obs.CallRetried:
		ev.Type, ev.Retries = CallRetried, oe.Count
		ev.Reason, _ = oe.Detail.(string)
	case obs.BudgetExhausted:
		ev.Type = BudgetExhausted
	case obs.BudgetRestored:
		ev.Type = BudgetRestored
	case obs.LimitChanged:
		ev.Type, ev.From, ev.To = LimitChanged, oe.Prev, oe.Count
	default:
		return
	}
	if r.log != nil {
		r.logEvent(e, &ev)
	}
	if ws != nil {
		for _, w := range *ws {
			w.f(ev)
		}
	}
}

// The attribute names the logger uses: those of the metrics.
const (
	AttrPolicy = "seawall.policy"
	AttrKind   = "seawall.policy.kind"
)

func (r *Registry) logEvent(e *entry, ev *Event) {
	ctx := context.Background()
	switch ev.Type {
	case StateChanged:
		c := ev.StateChange
		level := slog.LevelInfo
		if c.To == breaker.Open || c.To == breaker.ForcedOpen {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String(AttrPolicy, e.Name),
			slog.String(AttrKind, string(e.Kind)),
			slog.String("seawall.breaker.from_state", c.From.String()),
			slog.String("seawall.breaker.to_state", c.To.String()),
			slog.String("seawall.breaker.cause", c.Cause.String()),
		}
		if e.Kind == KindBreakerGroup {
			attrs = append(attrs, slog.String("seawall.breaker.key", c.Name))
		}
		if c.From == breaker.Closed {
			attrs = append(attrs,
				slog.Uint64("seawall.breaker.consecutive_failures", c.Counts.ConsecutiveFailures),
				slog.Uint64("seawall.breaker.window.calls", c.Counts.Calls),
				slog.Uint64("seawall.breaker.window.failures", c.Counts.Failures),
				slog.Uint64("seawall.breaker.window.slow_calls", c.Counts.SlowCalls))
		}
		r.log.LogAttrs(ctx, level, "seawall: breaker "+c.From.String()+" → "+c.To.String(), attrs...)
	case BudgetExhausted, BudgetRestored:
		b, _ := e.Value.(*retry.Budget)
		exhausted := b.Metrics().Exhausted
		e.mu.Lock()
		var since time.Time
		var refused uint64
		if ev.Type == BudgetExhausted {
			e.drySince, e.dryAt = ev.Time, exhausted-1
		} else {
			since, refused = e.drySince, exhausted-e.dryAt
			e.drySince = time.Time{}
		}
		e.mu.Unlock()
		if ev.Type == BudgetExhausted {
			r.log.LogAttrs(ctx, slog.LevelWarn, "seawall: retry budget exhausted: retries refused",
				slog.String(AttrPolicy, e.Name), slog.String(AttrKind, string(e.Kind)))
			return
		}
		attrs := []slog.Attr{slog.String(AttrPolicy, e.Name), slog.String(AttrKind, string(e.Kind)),
			slog.Uint64("seawall.retry.budget.refused", refused)}
		if !since.IsZero() {
			attrs = append(attrs, slog.Duration("seawall.retry.budget.exhausted_for", ev.Time.Sub(since)))
		}
		r.log.LogAttrs(ctx, slog.LevelInfo, "seawall: retry budget allows retries again", attrs...)
	case LimitChanged:
		e.mu.Lock()
		last := e.loggedLim
		log := math.Abs(float64(ev.To-last)) >= r.threshold*float64(max(last, 1))
		if log {
			e.loggedLim = ev.To
		}
		e.mu.Unlock()
		if !log {
			return
		}
		l, _ := e.Value.(*adaptive.Limiter)
		m := l.Metrics()
		r.log.LogAttrs(ctx, slog.LevelInfo, fmt.Sprintf("seawall: adaptive limit %d → %d", last, ev.To),
			slog.String(AttrPolicy, e.Name), slog.String(AttrKind, string(e.Kind)),
			slog.Int("seawall.adaptive.limit.previous", last),
			slog.Int("seawall.adaptive.limit", ev.To),
			slog.Duration("seawall.adaptive.latency.baseline", m.Baseline),
			slog.Duration("seawall.adaptive.latency.sampled", m.Sampled))
	}
}
