package status

import (
	"fmt"
	"net/http"

	"github.com/seawall-go/seawall/breaker"
)

// The operator actions, by the last element of their URL.
var actions = map[string]func(*breaker.Breaker){
	"force-open": (*breaker.Breaker).ForceOpen,
	"disable":    (*breaker.Breaker).Disable,
	"reset":      (*breaker.Breaker).Reset,
}

// An ActionResult is what a successful operator action answers, as JSON:
// the breaker it acted on (Key set for a group's member), the action, and
// the breaker's state after it.
type ActionResult struct {
	Name   string        `json:"name"`
	Key    string        `json:"key,omitempty"`
	Action string        `json:"action"`
	State  breaker.State `json:"state"`
}

// serveAction serves POST ./api/breaker/{name}/{action}[?key=].
func (h *Handler) serveAction(w http.ResponseWriter, r *http.Request) {
	name, act := r.PathValue("name"), r.PathValue("action")
	do, ok := actions[act]
	if !ok {
		fail(w, http.StatusNotFound, fmt.Sprintf("status: no action %q: a breaker's actions are force-open, disable and reset", act))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("status: %s changes the breaker: POST it (not %s)", act, r.Method))
		return
	}
	p, ok := h.reg.Lookup(name)
	if !ok {
		fail(w, http.StatusNotFound, fmt.Sprintf("status: no policy named %q", name))
		return
	}
	q := r.URL.Query()
	key, hasKey := q.Get("key"), q.Has("key")
	var b *breaker.Breaker
	switch v := p.Value.(type) {
	case *breaker.Breaker:
		if hasKey {
			fail(w, http.StatusBadRequest, fmt.Sprintf("status: %q is a breaker, not a breaker group: drop ?key=", name))
			return
		}
		b = v
	case *breaker.Group:
		if !hasKey {
			fail(w, http.StatusBadRequest, fmt.Sprintf("status: %q is a breaker group: name its member with ?key=", name))
			return
		}
		// Lookup, not Get, which would create a breaker for a key the
		// group does not hold.
		b, _ = v.Lookup(key)
		if b == nil {
			fail(w, http.StatusNotFound, fmt.Sprintf("status: breaker group %q holds no key %q", name, key))
			return
		}
	default:
		fail(w, http.StatusNotFound, fmt.Sprintf("status: %q is a %s, not a breaker or breaker group", name, p.Kind))
		return
	}
	do(b)
	writeJSON(w, ActionResult{Name: name, Key: key, Action: act, State: b.State()})
}
