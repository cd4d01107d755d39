package httpmw

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall/ratelimit"
)

func TestRemoteIP(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:1234":      "192.0.2.1",
		"[2001:db8::1]:443":   "2001:db8::1",
		"[fe80::1%eth0]:80":   "fe80::1%eth0",
		"not an address":      "not an address",
		"":                    "",
		"192.0.2.1":           "192.0.2.1", // no port: kept whole
		"[2001:db8::1]:https": "2001:db8::1",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		assert.Equal(t, want, RemoteIP(r), remote)
	}
}

func TestClientIP(t *testing.T) {
	xff, err := ClientIP("x-forwarded-for", "10.0.0.0/8", "192.0.2.7", "2001:db8:ffff::/48")
	require.NoError(t, err)
	fwd, err := ClientIP("Forwarded", "10.0.0.0/8", "192.0.2.7")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		key    KeyFunc
		remote string
		header []string // values of the header, one per line
		want   string
	}{
		{"untrusted peer: header ignored", xff, "203.0.113.5:1", []string{"198.51.100.1"}, "203.0.113.5"},
		{"untrusted peer spoofing a trusted address", xff, "203.0.113.5:1", []string{"10.0.0.1"}, "203.0.113.5"},
		{"trusted peer, no header", xff, "10.1.2.3:1", nil, "10.1.2.3"},
		{"trusted peer, one hop", xff, "10.1.2.3:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-sent prefix ignored", xff, "10.1.2.3:1", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops skipped", xff, "10.1.2.3:1", []string{"1.1.1.1, 198.51.100.1, 192.0.2.7, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines", xff, "10.1.2.3:1", []string{"1.1.1.1, 198.51.100.1", "10.0.0.5"}, "198.51.100.1"},
		{"all trusted: the leftmost", xff, "10.1.2.3:1", []string{"10.0.0.9, 192.0.2.7"}, "10.0.0.9"},
		{"malformed: the proxy that forwarded it", xff, "10.1.2.3:1", []string{"198.51.100.1, garbage, 10.0.0.5"}, "10.0.0.5"},
		{"malformed right away", xff, "10.1.2.3:1", []string{"unknown"}, "10.1.2.3"},
		{"empty entry", xff, "10.1.2.3:1", []string{"198.51.100.1,"}, "10.1.2.3"},
		{"spaces and ports", xff, "10.1.2.3:1", []string{" 198.51.100.1:5555 ,10.0.0.5"}, "198.51.100.1"},
		{"IPv6 client", xff, "10.1.2.3:1", []string{"[2001:db8::9]:80"}, "2001:db8::9"},
		{"IPv6 trusted proxy", xff, "[2001:db8:ffff::1]:1", []string{"2001:db8::9"}, "2001:db8::9"},
		{"IPv4-mapped peer", xff, "[::ffff:10.1.2.3]:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"Forwarded", fwd, "10.1.2.3:1", []string{`for=198.51.100.1;proto=https;by=10.1.2.3`}, "198.51.100.1"},
		{"Forwarded, several", fwd, "10.1.2.3:1", []string{`for=1.1.1.1, For="198.51.100.1:80", for=10.0.0.4`}, "198.51.100.1"},
		{"Forwarded IPv6", fwd, "10.1.2.3:1", []string{`for="[2001:db8::9]:4711"`}, "2001:db8::9"},
		{"Forwarded obfuscated", fwd, "10.1.2.3:1", []string{`for=198.51.100.1, for=_hidden`}, "10.1.2.3"},
		{"Forwarded without for", fwd, "10.1.2.3:1", []string{`proto=https`}, "10.1.2.3"},
		{"Forwarded ignores X-Forwarded-For", fwd, "10.1.2.3:1", nil, "10.1.2.3"},
		{"Forwarded from an untrusted peer", fwd, "203.0.113.5:1", []string{`for=198.51.100.1`}, "203.0.113.5"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		name := "X-Forwarded-For"
		if strings.HasPrefix(tc.name, "Forwarded") {
			name = "Forwarded"
		}
		for _, v := range tc.header {
			r.Header.Add(name, v)
		}
		if tc.name == "Forwarded ignores X-Forwarded-For" {
			r.Header.Set("X-Forwarded-For", "198.51.100.1")
		}
		assert.Equal(t, tc.want, tc.key(r), tc.name)
	}
}

func TestClientIPErrors(t *testing.T) {
	for _, tc := range []struct {
		header  string
		trusted []string
		err     string
	}{
		{"X-Real-IP", []string{"10.0.0.1"}, `httpmw: ClientIP: header "X-Real-IP" is neither X-Forwarded-For nor Forwarded`},
		{"X-Forwarded-For", nil, "httpmw: ClientIP: no trusted proxies (the header would never be read; use RemoteIP)"},
		{"X-Forwarded-For", []string{"10.0.0.1", "10.0.0.0/33"}, `httpmw: ClientIP: trusted proxy "10.0.0.0/33" is neither an IP address nor a CIDR prefix`},
		{"Forwarded", []string{"proxy.internal"}, `httpmw: ClientIP: trusted proxy "proxy.internal" is neither an IP address nor a CIDR prefix`},
		{"Forwarded", []string{""}, `httpmw: ClientIP: trusted proxy "" is neither an IP address nor a CIDR prefix`},
		{"Forwarded", []string{"fe80::%eth0/10"}, `httpmw: ClientIP: trusted proxy "fe80::%eth0/10" is neither an IP address nor a CIDR prefix`}, // no zoned prefix
	} {
		k, err := ClientIP(tc.header, tc.trusted...)
		assert.Nil(t, k)
		assert.EqualError(t, err, tc.err)
	}
}

// TestSpoofing runs a keyed limiter behind ClientIP on a real server: a
// client that is not a trusted proxy cannot escape its bucket by sending a
// fresh X-Forwarded-For with each request.
func TestSpoofing(t *testing.T) {
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Config: ratelimit.Config{Rate: 0.001, Burst: 2}})
	require.NoError(t, err)
	key, err := ClientIP("X-Forwarded-For", "10.0.0.0/8") // the test client, 127.0.0.1, is not trusted
	require.NoError(t, err)
	var seen []string
	srv := httptest.NewServer(newServer(t, WithKeyedRateLimit(k, key)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, key(r))
	})))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	var codes []int
	for i := range 4 {
		req, err := http.NewRequest("GET", srv.URL, nil)
		require.NoError(t, err)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	assert.Equal(t, []int{200, 200, 429, 429}, codes)
	assert.Equal(t, []string{"127.0.0.1", "127.0.0.1"}, seen, "keyed by the real address")
}

// TestClientIPZones checks IPv6 zones (issue 13): a zoned peer or hop is
// trusted by its address, whatever its zone, unless the trusted entry names
// a zone, which must then be the same; the key keeps the zone, as RemoteIP
// does, since a link-local address names one host only with its interface.
func TestClientIPZones(t *testing.T) {
	byPrefix, err := ClientIP("X-Forwarded-For", "fe80::/10")
	require.NoError(t, err)
	byAddr, err := ClientIP("X-Forwarded-For", "fe80::1")
	require.NoError(t, err)
	byZone, err := ClientIP("X-Forwarded-For", "fe80::1%eth0")
	require.NoError(t, err)
	fwd, err := ClientIP("Forwarded", "fe80::/10")
	require.NoError(t, err)
	v4, err := ClientIP("X-Forwarded-For", "10.0.0.0/8")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		key    KeyFunc
		remote string
		header string
		want   string
	}{
		{"zoned peer, trusted prefix", byPrefix, "[fe80::1%eth0]:443", "198.51.100.1", "198.51.100.1"},
		{"zoned peer, trusted address", byAddr, "[fe80::1%eth0]:443", "198.51.100.1", "198.51.100.1"},
		{"zoned peer, another address", byAddr, "[fe80::2%eth0]:443", "198.51.100.1", "fe80::2%eth0"},
		{"zoned peer, trusted with its zone", byZone, "[fe80::1%eth0]:443", "198.51.100.1", "198.51.100.1"},
		{"zoned peer, another zone", byZone, "[fe80::1%eth1]:443", "198.51.100.1", "fe80::1%eth1"},
		{"unzoned peer, entry with a zone", byZone, "[fe80::1]:443", "198.51.100.1", "fe80::1"},
		{"zoned trusted hop skipped", byPrefix, "[fe80::1%eth0]:443", "198.51.100.1, fe80::7%eth1", "198.51.100.1"},
		{"zoned client keeps its zone", byAddr, "[fe80::1%eth0]:443", "2001:db8::9, fe80::9%eth1", "fe80::9%eth1"},
		{"zoned untrusted hop is the key", v4, "10.1.2.3:1", "fe80::9%eth1", "fe80::9%eth1"},
		{"Forwarded, zoned peer and hop", fwd, "[fe80::1%eth0]:443", `for=198.51.100.1, for="[fe80::7%eth1]:80"`, "198.51.100.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		name := "X-Forwarded-For"
		if strings.HasPrefix(tc.name, "Forwarded") {
			name = "Forwarded"
		}
		r.Header.Set(name, tc.header)
		assert.Equal(t, tc.want, tc.key(r), tc.name)
	}
}
