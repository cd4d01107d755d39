package redisrate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/ratelimit/redisrate"
)

// A fleet of 12 replicas shares the 1000 requests a second that the
// account service takes. While Redis is unavailable, each replica falls
// back to its twelfth of the limit. (No output: it needs a Redis.)
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // lets Config.Timeout bound each call
	})
	defer rdb.Close()

	accounts, err := redisrate.New(rdb, redisrate.Config{
		Rate:      1000,
		Burst:     100,
		Key:       "accounts",
		Instances: 12, // the Deployment's replicas
	})
	if err != nil {
		panic(err)
	}

	call := func(ctx context.Context) error { return nil } // the call to the account service
	err = accounts.Do(context.Background(), call)
	if after, ok := seawall.RetryAfter(err); ok && errors.Is(err, redisrate.ErrLimited) {
		fmt.Println("over the shared limit; retry after", after.Round(time.Millisecond))
	}
}

// A limit per client, shared by every replica: each API key gets 10
// requests a second, 20 at once. Refused requests get 429 and the exact
// Retry-After, as with httpmw.WithKeyedRateLimit.
func ExampleKeyed() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()

	perClient, err := redisrate.NewKeyed(rdb, redisrate.Config{
		Rate:     10,
		Burst:    20,
		Prefix:   "api:rl:",
		Fallback: redisrate.FailOpen, // an outage of Redis lifts the per-client limits
	})
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := perClient.Try(r.Header.Get("X-Api-Key"), 1); err != nil {
			after, _ := seawall.RetryAfter(err)
			w.Header().Set("Retry-After", fmt.Sprint(int(after.Seconds()+0.999)))
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	_ = handler
}
