package bridge_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/netget/netget-peer/bridge"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*bridge.Config)
		wantErr string // "" = valid
	}{
		{"default", func(*bridge.Config) {}, ""},
		{"no peer", func(c *bridge.Config) { c.PeerID = "" }, "peer ID"},
		{"bad network", func(c *bridge.Config) { c.Network = "Prod" }, "invalid network name"},
		{"bad origin", func(c *bridge.Config) { c.Origins = []string{"app.example"} }, `origin "app.example"`},
		{"origin with path", func(c *bridge.Config) { c.Origins = []string{"https://app.example/x"} }, "no path"},
		{"bad host", func(c *bridge.Config) { c.Hosts = []string{"bridge.example:8080"} }, "without port"},
		{"bad service", func(c *bridge.Config) { c.Services = []string{"no spaces"} }, "service allowlist"},
		{"tiny frames", func(c *bridge.Config) { c.MaxFrameSize = 10 }, "max frame size"},
		{"no conns", func(c *bridge.Config) { c.MaxConns = 0 }, "max connections"},
		{"no rate", func(c *bridge.Config) { c.FramesPerSecond = 0 }, "frame rate"},
		{"no burst", func(c *bridge.Config) { c.FrameBurst = 0 }, "frame rate"},
		{"no in-flight", func(c *bridge.Config) { c.MaxInFlight = 0 }, "in-flight"},
		{"no results", func(c *bridge.Config) { c.MaxResults = 0 }, "max results"},
		{"timeout over max", func(c *bridge.Config) { c.FindTimeout = 2 * c.MaxFindTimeout }, "find timeout"},
		{"no hello timeout", func(c *bridge.Config) { c.HelloTimeout = 0 }, "hello timeout"},
		{"negative ping", func(c *bridge.Config) { c.PingInterval = -1 }, "ping interval"},
		{"huge token", func(c *bridge.Config) { c.Token = strings.Repeat("t", c.MaxFrameSize) }, "token"},
		{"short token", func(c *bridge.Config) { c.Token = "s3cret" }, "token too short: 6 bytes, want at least 16"},
		{"token of min length", func(c *bridge.Config) { c.Token = strings.Repeat("t", bridge.MinTokenLen) }, ""},
		{"no sessions per addr", func(c *bridge.Config) { c.MaxSessionsPerAddr = 0 }, "per address"},
		{"no idle timeout", func(c *bridge.Config) { c.IdleTimeout = 0 }, "idle timeout"},
		{"no open conns", func(c *bridge.Config) { c.MaxOpenConns = 0 }, "max open connections"},
		{"no open conns per addr", func(c *bridge.Config) { c.MaxOpenConnsPerAddr = 0 }, "max open connections"},
		{"negative reserve", func(c *bridge.Config) { c.ReserveFDs = -1 }, "reserved descriptors"},
		{"no header timeout", func(c *bridge.Config) { c.HeaderTimeout = 0 }, "header timeout"},
		{"no finds", func(c *bridge.Config) { c.MaxFinds = 0 }, "max finds"},
		{"negative record cache", func(c *bridge.Config) { c.RecordCache = -1 }, "record cache -1"},
		{"huge record cache", func(c *bridge.Config) { c.RecordCache = 1 << 20 }, "record cache 1048576"},
		{"no record cache", func(c *bridge.Config) { c.RecordCache = 0 }, ""},
		{"backoff over max", func(c *bridge.Config) { c.TokenBackoff = 2 * c.MaxTokenBackoff }, "token backoff"},
		{"no tracked addrs", func(c *bridge.Config) { c.MaxTrackedAddrs = 0 }, "tracked addresses"},
		{"no watches per session", func(c *bridge.Config) { c.MaxSessionWatches = 0 }, "max watches per session 0"},
		{"no watches", func(c *bridge.Config) { c.MaxWatches = 0 }, "in all 0"},
		{"cert without key", func(c *bridge.Config) { c.CertFile = "cert.pem" }, "key file"},
		{"pings off", func(c *bridge.Config) { c.PingInterval = 0 }, ""},
		{"allowlists", func(c *bridge.Config) {
			c.Origins, c.Hosts, c.Services = []string{"*"}, []string{"*.example"}, []string{"DatabaseService"}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bridge.DefaultConfig("12D3KooWPeer", "development")
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (!errors.Is(err, bridge.ErrBadConfig) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate: got %v, want ErrBadConfig mentioning %q", err, tt.wantErr)
			}
			if _, err := bridge.New(newFakeFinder(t), cfg); (err == nil) != (tt.wantErr == "") {
				t.Fatalf("New: %v", err)
			}
		})
	}
	if _, err := bridge.New(nil, bridge.DefaultConfig("p", "development")); !errors.Is(err, bridge.ErrBadConfig) {
		t.Fatalf("New without a finder: %v, want ErrBadConfig", err)
	}
}
