package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// originPattern is one parsed Config.Origins entry.
type originPattern struct {
	any    bool   // "*"
	scheme string // lowercase
	host   string // lowercase; without "*." when sub is set
	sub    bool   // "*.host": any subdomain of host (not host itself)
	port   string // "" = the scheme's default port, "*" = any
}

// parseOrigins parses Config.Origins.
func parseOrigins(list []string) ([]originPattern, error) {
	out := make([]originPattern, 0, len(list))
	for _, s := range list {
		p, err := parseOrigin(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseOrigin(s string) (originPattern, error) {
	if s == "*" {
		return originPattern{any: true}, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("origin %q: %s (want \"*\" or scheme://host[:port], host may start with \"*.\", port may be \"*\")", s, why)
	}
	scheme, rest, ok := strings.Cut(strings.ToLower(s), "://")
	if !ok || scheme == "" || rest == "" {
		return originPattern{}, bad("no scheme")
	}
	if strings.ContainsAny(rest, "/?#@") {
		return originPattern{}, bad("an origin has no path, query or user")
	}
	p := originPattern{scheme: scheme}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
		if port == "" {
			return originPattern{}, bad("empty port")
		}
	}
	if port != "" && port != "*" {
		if _, err := netip.ParseAddrPort("0.0.0.0:" + port); err != nil {
			return originPattern{}, bad("bad port")
		}
	}
	p.port = port
	if h, ok := strings.CutPrefix(host, "*."); ok {
		p.sub, host = true, h
	}
	if host == "" || strings.Contains(host, "*") {
		return originPattern{}, bad("bad host")
	}
	p.host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return p, nil
}

// origin is a parsed Origin header.
type origin struct {
	scheme, host, port string // lowercase; port is explicit or the scheme's default
}

// parseOriginHeader parses a browser's Origin header. "null" and anything
// that is not scheme://host[:port] fail.
func parseOriginHeader(h string) (origin, error) {
	if h == "null" {
		return origin{}, fmt.Errorf("origin null")
	}
	u, err := url.Parse(strings.ToLower(h))
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return origin{}, fmt.Errorf("malformed origin %q", truncate(h, 128))
	}
	o := origin{scheme: u.Scheme, host: u.Hostname(), port: u.Port()}
	if o.port == "" {
		o.port = defaultPort(o.scheme)
	}
	return o, nil
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// match reports whether the pattern allows o.
func (p originPattern) match(o origin) bool {
	if p.any {
		return true
	}
	if p.scheme != o.scheme {
		return false
	}
	if p.sub {
		if !strings.HasSuffix(o.host, "."+p.host) {
			return false
		}
	} else if p.host != o.host {
		return false
	}
	switch p.port {
	case "*":
		return true
	case "":
		return o.port == defaultPort(o.scheme)
	}
	return p.port == o.port
}

// sameOrigin reports whether o is the origin the request came to: its
// host and port equal the Host header's (with the request scheme's
// default port when Host has none).
func sameOrigin(o origin, host string, tls bool) bool {
	h, port := splitHost(host)
	if port == "" {
		port = "80"
		if tls {
			port = "443"
		}
	}
	return o.host == h && o.port == port
}

// splitHost splits a Host header into a lowercase name (IPv6 without
// brackets, no trailing dot) and port.
func splitHost(hostport string) (host, port string) {
	hostport = strings.ToLower(hostport)
	host = hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	return host, port
}

// checkHosts validates Config.Hosts.
func checkHosts(list []string) error {
	for _, h := range list {
		name := strings.TrimPrefix(h, "*.")
		if h == "*" {
			continue
		}
		if name == "" || strings.ContainsAny(name, "*/:@ ") {
			return fmt.Errorf("host %q: want \"*\", a name or \"*.domain\", without port", h)
		}
	}
	return nil
}

// hostAllowed reports whether the Host header names this bridge, against
// DNS rebinding: IP literals, localhost and *.localhost always do (no
// rebinding there); other names only when listed in hosts, or, when hosts
// is empty, over TLS (the certificate pins the name).
func hostAllowed(hosts []string, hostport string, tls bool) bool {
	host, _ := splitHost(hostport)
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if len(hosts) == 0 {
		return tls
	}
	for _, h := range hosts {
		h = strings.ToLower(h)
		if h == "*" || h == host {
			return true
		}
		if d, ok := strings.CutPrefix(h, "*."); ok && strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}
