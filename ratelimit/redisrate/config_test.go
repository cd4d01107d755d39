package redisrate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/breaker"
)

// Bad configurations and clients are refused by New with an error that
// names the field and the value, and nothing is sent to Redis.
func TestNewRejects(t *testing.T) {
	var sent countHook
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	c.AddHook(&sent)
	ok := Config{Rate: 100, Burst: 10, Key: "k", Instances: 3}
	with := func(f func(*Config)) Config { cfg := ok; f(&cfg); return cfg }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero", Config{}, "redisrate: Rate 0 out of range (0,1e+06]"},
		{"rate 0", with(func(c *Config) { c.Rate = 0 }), "redisrate: Rate 0 out of range (0,1e+06]"},
		{"rate negative", with(func(c *Config) { c.Rate = -1 }), "redisrate: Rate -1 out of range (0,1e+06]"},
		{"rate NaN", with(func(c *Config) { c.Rate = math.NaN() }), "redisrate: Rate NaN is not a number"},
		{"rate +Inf", with(func(c *Config) { c.Rate = math.Inf(1) }), "redisrate: Rate +Inf is infinite: a shared limit needs a finite rate, in (0,1e+06]"},
		{"rate -Inf", with(func(c *Config) { c.Rate = math.Inf(-1) }), "redisrate: Rate -Inf is infinite: a shared limit needs a finite rate, in (0,1e+06]"},
		{"rate too high", with(func(c *Config) { c.Rate = 2e6 }), "redisrate: Rate 2e+06 out of range (0,1e+06]"},
		{"burst 0", with(func(c *Config) { c.Burst = 0 }), "redisrate: Burst 0 out of range [1,1000000000]"},
		{"burst negative", with(func(c *Config) { c.Burst = -5 }), "redisrate: Burst -5 out of range [1,1000000000]"},
		{"refill too long", with(func(c *Config) { c.Rate, c.Burst = 1e-6, 1000 }), "redisrate: Burst 1000 at Rate 1e-06 takes 2.78e+05h to refill, above the limit of 87600h0m0s"},
		{"empty key", with(func(c *Config) { c.Key = "" }), "redisrate: empty key"},
		{"long key", with(func(c *Config) { c.Key = strings.Repeat("k", 513) }), "redisrate: key of 513 bytes is longer than MaxKeyLen 512"},
		{"prefix brace", with(func(c *Config) { c.Prefix = "a{b}:" }), `redisrate: Prefix "a{b}:" contains '{' or '}', which would change the keys' hash tag`},
		{"timeout negative", with(func(c *Config) { c.Timeout = -time.Millisecond }), "redisrate: Timeout -1ms out of range (0,1s]"},
		{"timeout long", with(func(c *Config) { c.Timeout = 2 * time.Second }), "redisrate: Timeout 2s out of range (0,1s]"},
		{"no instances", with(func(c *Config) { c.Instances = 0 }), `redisrate: Instances 0: Fallback "local" needs the number of processes that share the limit (1 for one)`},
		{"negative instances", with(func(c *Config) { c.Instances, c.Fallback = -1, FailOpen }), "redisrate: Instances -1 out of range [1,1000000]"},
		{"bad mode", with(func(c *Config) { c.Fallback = 7 }), "redisrate: Fallback Mode(7) is not a mode"},
		{"bad breaker", with(func(c *Config) { c.Breaker.FailureRate = 2 }), "redisrate: Breaker: breaker: FailureRate 2 out of range (0,1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(c, tt.cfg)
			assert.Nil(t, l)
			assert.EqualError(t, err, tt.want)
		})
	}
	_, err := NewKeyed(c, ok)
	assert.EqualError(t, err, `redisrate: Key "k" set for a keyed limiter, which takes its keys in each call`)
	for _, nilClient := range []redis.UniversalClient{nil, (*redis.Client)(nil), (*redis.ClusterClient)(nil), (*redis.Ring)(nil)} {
		_, err := New(nilClient, ok)
		assert.EqualError(t, err, "redisrate: nil client")
	}
	assert.Zero(t, sent.n.Load(), "nothing sent to Redis")
}

// A client that would not end a call at the limiter's Timeout is refused.
func TestNewChecksClientTimeouts(t *testing.T) {
	cfg := Config{Rate: 100, Burst: 10, Key: "k", Instances: 1}
	for _, tt := range []struct {
		name string
		opt  redis.Options
		ok   bool
	}{
		{"context deadlines", redis.Options{ContextTimeoutEnabled: true}, true},
		{"go-redis defaults", redis.Options{}, false},
		{"short socket timeouts", redis.Options{ReadTimeout: 5 * time.Millisecond, WriteTimeout: 2 * time.Millisecond}, true},
		{"long write timeout", redis.Options{ReadTimeout: 5 * time.Millisecond, WriteTimeout: time.Second}, false},
		{"no deadlines", redis.Options{ContextTimeoutEnabled: true, ReadTimeout: -2}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Addr = "127.0.0.1:1"
			c := redis.NewClient(&tt.opt)
			defer c.Close()
			_, err := New(c, cfg)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, "cannot bound a call")
			}
		})
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	_, err := New(cc, cfg)
	assert.ErrorContains(t, err, "ContextTimeoutEnabled false")
}

func TestDefaults(t *testing.T) {
	cfg, err := Config{Rate: 1, Burst: 1, Key: "k", Instances: 1}.withDefaults(false)
	require.NoError(t, err)
	assert.Equal(t, "seawall:rl:", cfg.Prefix)
	assert.Equal(t, 5*time.Millisecond, cfg.Timeout)
	assert.Equal(t, 3, cfg.Breaker.ConsecutiveFailures)
	assert.Equal(t, time.Second, cfg.Breaker.OpenDuration)
	assert.Equal(t, FallbackLocal, cfg.Fallback)
	cfg, err = Config{Rate: 1, Burst: 1, Key: "k", Instances: 1, Breaker: breaker.Config{FailureRate: 0.5, CountWindow: 10}}.withDefaults(false)
	require.NoError(t, err)
	assert.Zero(t, cfg.Breaker.ConsecutiveFailures, "a trip rule of the user's replaces the default")
}

func TestConfigJSON(t *testing.T) {
	var cfg Config
	err := json.Unmarshal([]byte(`{"rate": 1000, "burst": 100, "key": "accounts", "instances": 12,
		"timeout": "3ms", "fallback": "fail-closed", "breaker": {"openDuration": "2s"}}`), &cfg)
	require.NoError(t, err)
	assert.Equal(t, Config{Rate: 1000, Burst: 100, Key: "accounts", Instances: 12, Timeout: 3 * time.Millisecond,
		Fallback: FailClosed, Breaker: breaker.Config{OpenDuration: 2 * time.Second}}, cfg)
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	var back Config
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, cfg, back)
	assert.Contains(t, string(b), `"timeout":"3ms"`)
	assert.Contains(t, string(b), `"fallback":"fail-closed"`)

	assert.ErrorContains(t, json.Unmarshal([]byte(`{"rate": 1, "brust": 2}`), &cfg), `unknown field "brust"`)
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"fallback": "local-ish"}`), &cfg), `Fallback "local-ish" is not a mode`)
}

func FuzzConfigJSON(f *testing.F) {
	f.Add([]byte(`{"rate": 1000, "burst": 100, "key": "a", "instances": 2, "timeout": "5ms"}`))
	f.Add([]byte(`{"rate": -1, "fallback": "fail-open"}`))
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		var cfg Config
		if json.Unmarshal(b, &cfg) != nil {
			return
		}
		if l, err := New(c, cfg); err == nil && (l.Rate() <= 0 || l.Burst() < 1) {
			t.Fatalf("New accepted %+v", cfg)
		}
	})
}
