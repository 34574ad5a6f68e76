package bridge

import "testing"

func TestOriginPatterns(t *testing.T) {
	tests := []struct {
		pattern, origin string
		want            bool
	}{
		{"*", "https://anyone.example", true},
		{"https://app.example", "https://app.example", true},
		{"https://app.example", "https://APP.example", true},
		{"https://app.example", "https://app.example:443", true},
		{"https://app.example", "https://app.example:8443", false},
		{"https://app.example", "http://app.example", false},
		{"https://app.example", "https://app.example.evil", false},
		{"https://app.example", "https://evilapp.example", false},
		{"https://app.example:8443", "https://app.example:8443", true},
		{"https://app.example:8443", "https://app.example", false},
		{"http://localhost:*", "http://localhost", true},
		{"http://localhost:*", "http://localhost:5173", true},
		{"http://localhost:*", "http://localhost.evil.example:5173", false},
		{"http://[::1]:*", "http://[::1]:8080", true},
		{"https://*.example.org", "https://shop.example.org", true},
		{"https://*.example.org", "https://a.b.example.org", true},
		{"https://*.example.org", "https://example.org", false},
		{"https://*.example.org", "https://evilexample.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.origin, func(t *testing.T) {
			p, err := parseOrigin(tt.pattern)
			if err != nil {
				t.Fatalf("parseOrigin(%q): %v", tt.pattern, err)
			}
			o, err := parseOriginHeader(tt.origin)
			if err != nil {
				t.Fatalf("parseOriginHeader(%q): %v", tt.origin, err)
			}
			if got := p.match(o); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBadOrigins(t *testing.T) {
	for _, p := range []string{"", "app.example", "https://", "https://app.example/path", "https://a@b",
		"https://app.example:", "https://app.example:99999", "https://*", "https://a.*.example"} {
		t.Run("pattern "+p, func(t *testing.T) {
			if _, err := parseOrigin(p); err == nil {
				t.Fatalf("parseOrigin(%q) accepted", p)
			}
		})
	}
	for _, h := range []string{"null", "", "app.example", "https://", "https://u@app.example", "https://app.example/x"} {
		t.Run("header "+h, func(t *testing.T) {
			if _, err := parseOriginHeader(h); err == nil {
				t.Fatalf("parseOriginHeader(%q) accepted", h)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		origin, host string
		tls, want    bool
	}{
		{"http://bridge.example:8080", "bridge.example:8080", false, true},
		{"http://bridge.example", "bridge.example", false, true},
		{"http://bridge.example", "bridge.example:80", false, true},
		{"https://bridge.example", "bridge.example", true, true},
		{"https://bridge.example", "bridge.example", false, false}, // page 443, bridge 80
		{"http://bridge.example:8080", "bridge.example:8081", false, false},
		{"http://[::1]:8080", "[::1]:8080", false, true},
		{"http://other.example:8080", "bridge.example:8080", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.origin+" "+tt.host, func(t *testing.T) {
			o, err := parseOriginHeader(tt.origin)
			if err != nil {
				t.Fatal(err)
			}
			if got := sameOrigin(o, tt.host, tt.tls); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHostAllowed(t *testing.T) {
	tests := []struct {
		name  string
		hosts []string
		host  string
		tls   bool
		want  bool
	}{
		{"ipv4", nil, "127.0.0.1:8080", false, true},
		{"ipv6", nil, "[::1]:8080", false, true},
		{"public ip", nil, "203.0.113.7", false, true},
		{"localhost", nil, "localhost:8080", false, true},
		{"sub.localhost", nil, "app.localhost", false, true},
		{"name over http", nil, "evil.example:8080", false, false},
		{"name over tls", nil, "bridge.example", true, true},
		{"listed", []string{"bridge.example"}, "Bridge.Example.:443", false, true},
		{"listed suffix", []string{"*.example"}, "bridge.example", false, true},
		{"not listed", []string{"bridge.example"}, "evil.example", true, false},
		{"ip with a list", []string{"bridge.example"}, "127.0.0.1", false, true},
		{"any", []string{"*"}, "whatever.example", false, true},
		{"empty", nil, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hostAllowed(tt.hosts, tt.host, tt.tls); got != tt.want {
				t.Fatalf("hostAllowed(%v, %q, tls=%v) = %v, want %v", tt.hosts, tt.host, tt.tls, got, tt.want)
			}
		})
	}
}
