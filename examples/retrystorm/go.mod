module github.com/seawall-go/seawall/examples/retrystorm

go 1.26.0

require (
	github.com/redis/go-redis/v9 v9.23.0
	github.com/seawall-go/seawall v0.0.0
	github.com/seawall-go/seawall/ratelimit/redisrate v0.0.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

// Until the first release is tagged, the demo builds against the modules
// of this repository; go.work does the same for development. It is a
// module of its own so that its fleet variant (-fleet) may use go-redis,
// through redisrate, without the root module's users getting go-redis in
// their module graph.
replace github.com/seawall-go/seawall => ../../

replace github.com/seawall-go/seawall/ratelimit/redisrate => ../../ratelimit/redisrate
