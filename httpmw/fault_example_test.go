package httpmw_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/seawall-go/seawall/fault"
	"github.com/seawall-go/seawall/httpmw"
)

// Fault injection for a game day: the Injector is off until enabled, and
// then fails the requests it picks with a 503 without Retry-After, which a
// client's breaker counts as a failure.
func ExampleWithFaultInjection() {
	inj, err := fault.New(fault.Config{ErrorRate: 1}) // every request, once enabled
	if err != nil {
		log.Fatal(err)
	}
	s, err := httpmw.NewServer(httpmw.WithFaultInjection(inj, httpmw.FaultResponse{Status: http.StatusServiceUnavailable}))
	if err != nil {
		log.Fatal(err)
	}
	h := s.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, on := range []bool{false, true, false} {
		if on {
			inj.Enable()
		} else {
			inj.Disable()
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		fmt.Println("enabled:", on, "status:", w.Code, "Retry-After:", w.Header()["Retry-After"])
	}
	// Output:
	// enabled: false status: 200 Retry-After: []
	// enabled: true status: 503 Retry-After: []
	// enabled: false status: 200 Retry-After: []
}
