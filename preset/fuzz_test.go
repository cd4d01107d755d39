package preset

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzLoad loads arbitrary bytes. Load must never panic; a config it
// accepts must be valid, must build, and must marshal to a document that
// loads back equal.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `timeout: 5s`, `[]`, `"x"`,
		`{"rateLimit": {"rate": 50, "burst": 10}, "timeout": "5s", "attemptTimeout": "1s",
			"retry": {"maxAttempts": 3, "delay": "200ms", "budget": {"ratio": 0.2}},
			"breaker": {"failureRate": 0.5, "timeWindow": "10s", "minimumCalls": 20}}`,
		"rateLimit:\n  rate: .inf\nretry:\n  maxAttempts: 1\ndisableBreaker: true\n",
		"retry:\n  budget:\n    windw: 1s\n",
		"timeout: 1m\ntimeout: 2m\n",
		"a: &a [x]\nb: [*a, *a]\n",
		"retry: &r\n  budget: *r\n",
		`{"breaker": {"countWindow": 10, "consecutiveFailures": 3}, "attemptTimeout": "30s"}`,
		`{"retry": {"jitter": "decorrelated", "maxAttempts": 5, "delay": "1s"}, "timeout": "1m"}`,
		`{"rateLimit": {"rate": 1}, "breaker": {"minimumCalls": 30}}`,
		`{"attemptTimeout": "40s"}`,
		`{"retry": {"attemptTimeout": "1s"}}`,
		"? [a]\n: 1\n",
		"1: 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Load(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load(%q) accepted a config that Validate refuses: %v", data, err)
		}
		tr, err := NewHTTPTransport(nil, c)
		if err != nil {
			t.Fatalf("Load(%q) accepted a config that does not build: %v", data, err)
		}
		tr.CloseIdleConnections()
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Load(%q): %+v does not marshal: %v", data, c, err)
		}
		back, err := Load(out)
		if err != nil {
			t.Fatalf("Load(%q) gave %s, which does not load: %v", data, out, err)
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("Load(%q) gave %+v, marshalled as %s, loaded as %+v", data, c, out, back)
		}
	})
}
