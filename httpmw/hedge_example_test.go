package httpmw_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/seawall-go/seawall/hedge"
	"github.com/seawall-go/seawall/httpmw"
)

// A replica that stalls: the first request hangs until its caller gives
// up on it; the hedge, sent 20ms later, answers, and the stalled attempt
// is cancelled.
func ExampleWithHedge() {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempt := n.Add(1)
		if attempt == 1 {
			<-r.Context().Done() // stalled until the hedge wins
			return
		}
		fmt.Fprintf(w, "answered by attempt %d", attempt)
	}))
	defer srv.Close()

	tr, err := httpmw.NewTransport(srv.Client().Transport,
		httpmw.WithHedge(hedge.Config{Delay: 20 * time.Millisecond})) // fixed; by default the p95 latency
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: answered by attempt 2
}
