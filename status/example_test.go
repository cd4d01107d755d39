package status_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/registry"
	"github.com/seawall-go/seawall/status"
)

// Mount the status page beside pprof, at /debug/seawall/, and read its
// JSON.
func Example() {
	reg, _ := registry.New()
	br, _ := breaker.New(breaker.Config{})
	_ = reg.Register("accounts", br)

	h, err := status.NewHandler(reg)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/seawall/", http.StripPrefix("/debug/seawall", h))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/seawall/api/snapshot", nil))
	var snap struct {
		Policies []struct {
			Name    string `json:"name"`
			Kind    string `json:"kind"`
			Breaker struct {
				State string `json:"state"`
			} `json:"breaker"`
		} `json:"policies"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &snap); err != nil {
		panic(err)
	}
	for _, p := range snap.Policies {
		fmt.Println(p.Name, p.Kind, p.Breaker.State)
	}
	// Output: accounts breaker closed
}
