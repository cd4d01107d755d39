package httpmw

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// A KeyFunc names the client a request comes from, for WithKeyedRateLimit:
// its IP address ([RemoteIP], [ClientIP]), an API key or a tenant
// ([HeaderKey]). Requests with the same key share a limit.
type KeyFunc func(r *http.Request) string

// RemoteIP is the default KeyFunc: the IP address of the immediate peer,
// from r.RemoteAddr without its port. It ignores every header, so a client
// cannot choose its key; behind a reverse proxy every request comes from
// the proxy, and [ClientIP] is the one to use.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// HeaderKey returns a KeyFunc that keys a request by the value of the
// header name: an API key, a tenant. Requests without the header share the
// key "". Use it only where something in front has authenticated the
// header, or a client can pick a fresh key for each request.
func HeaderKey(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) string {
		if vs := r.Header[name]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
}

// ClientIP returns a KeyFunc that keys a request by its client's IP address
// as reported by the reverse proxies in front of the server, in header
// ("X-Forwarded-For" or "Forwarded", RFC 7239), trusting only the proxies in
// trustedProxies: IP addresses ("10.0.0.7", "::1") or CIDR prefixes
// ("10.0.0.0/8").
//
// The header is read only when the immediate peer (r.RemoteAddr) is a
// trusted proxy; otherwise the key is the peer's address, whatever the
// request's headers say, so that a client cannot pick its own key. When it
// is read, its addresses are walked from the right (the one the nearest
// proxy added) to the left, skipping trusted proxies: the first address
// that is not one is the key. A malformed or obfuscated entry ("unknown")
// stops the walk, and the key is the last address known good (the proxy
// that forwarded it); if every address is trusted, the key is the leftmost.
//
// IPv6 zones: an address with a zone ("fe80::1%eth0", the peer's or a
// hop's) is trusted by its address, whatever its zone, so that a proxy on a
// link-local address is trusted by "fe80::/10" or "fe80::1". An entry of
// trustedProxies may name a zone ("fe80::1%eth0": that address on that
// interface only, the zone compared as written); a prefix cannot (netip has
// no zoned prefix). A key keeps its zone, as RemoteIP's does: a link-local
// address names one host only with its interface.
//
// It returns an error naming the first entry of trustedProxies that is not
// an address or a prefix, or a header it does not know; and an error if
// trustedProxies is empty (the header would never be read: use RemoteIP).
func ClientIP(header string, trustedProxies ...string) (KeyFunc, error) {
	name := http.CanonicalHeaderKey(header)
	if name != "X-Forwarded-For" && name != "Forwarded" {
		return nil, fmt.Errorf("httpmw: ClientIP: header %q is neither X-Forwarded-For nor Forwarded", header)
	}
	if len(trustedProxies) == 0 {
		return nil, errors.New("httpmw: ClientIP: no trusted proxies (the header would never be read; use RemoteIP)")
	}
	trusted := make([]trustedProxy, 0, len(trustedProxies))
	for _, s := range trustedProxies {
		p, err := parseTrusted(s)
		if err != nil {
			return nil, fmt.Errorf("httpmw: ClientIP: trusted proxy %q is neither an IP address nor a CIDR prefix", s)
		}
		trusted = append(trusted, p)
	}
	isTrusted := func(a netip.Addr) bool {
		// netip.Prefix.Contains never matches an address with a zone.
		zone := a.Zone()
		a = a.WithZone("").Unmap()
		for _, p := range trusted {
			if p.prefix.Contains(a) && (p.zone == "" || p.zone == zone) {
				return true
			}
		}
		return false
	}
	forwarded := name == "Forwarded"
	return func(r *http.Request) string {
		peer := RemoteIP(r)
		a, err := netip.ParseAddr(peer)
		if err != nil || !isTrusted(a) {
			return peer
		}
		key := peer
		vs := r.Header[name]
		for i := len(vs) - 1; i >= 0; i-- {
			for v := vs[i]; ; {
				j := strings.LastIndexByte(v, ',')
				elem := v[j+1:]
				var host string
				if forwarded {
					host = forwardedFor(elem)
				} else {
					host = stripPort(strings.TrimSpace(elem))
				}
				a, err := netip.ParseAddr(host)
				if err != nil {
					return key
				}
				key = host
				if !isTrusted(a) {
					return key
				}
				if j < 0 {
					break
				}
				v = v[:j]
			}
		}
		return key
	}, nil
}

// A trustedProxy is an entry of ClientIP's trustedProxies: a prefix (an
// address is a prefix of its full length) without a zone, and the zone the
// entry named, if any ("" matches every zone).
type trustedProxy struct {
	prefix netip.Prefix
	zone   string
}

// parseTrusted parses an IP address, with or without a zone, or a CIDR
// prefix (which cannot have a zone).
func parseTrusted(s string) (trustedProxy, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return trustedProxy{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return trustedProxy{prefix: p.Masked()}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return trustedProxy{}, err
	}
	zone := a.Zone()
	a = a.WithZone("").Unmap()
	return trustedProxy{prefix: netip.PrefixFrom(a, a.BitLen()), zone: zone}, nil
}

// forwardedFor returns the node of the for= parameter of one element of a
// Forwarded header (`for=192.0.2.60;proto=http`), without quotes, brackets
// or port; "" if there is none.
func forwardedFor(elem string) string {
	for elem != "" {
		pair := elem
		if i := strings.IndexByte(elem, ';'); i >= 0 {
			pair, elem = elem[:i], elem[i+1:]
		} else {
			elem = ""
		}
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "for") {
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return stripPort(v)
		}
	}
	return ""
}

// stripPort removes a port from "1.2.3.4:80" and the brackets (and port)
// from "[::1]:80"; a bare address is returned unchanged.
func stripPort(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return s
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		return s[:i]
	}
	return s
}
