package bootstrap_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/bootstrap"
)

func TestUnreachableError(t *testing.T) {
	p1, _ := peer.Decode(id1)
	p2, _ := peer.Decode(id2)
	refused := errors.New("connection refused")
	tests := []struct {
		name  string
		peers []bootstrap.PeerError
		want  string
	}{
		{"none", nil, "no bootstrap peer reachable"},
		{"one", []bootstrap.PeerError{{ID: p1, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}, Err: refused}},
			"no bootstrap peer reachable: " + id1 + " (/ip4/127.0.0.1/tcp/1): connection refused"},
		{"two, several addresses", []bootstrap.PeerError{
			{ID: p1, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1"), ma.StringCast("/ip6/::1/tcp/1")}, Err: refused},
			{ID: p2, Err: nil}},
			"no bootstrap peer reachable: " + id1 + " (/ip4/127.0.0.1/tcp/1, /ip6/::1/tcp/1): connection refused; " +
				id2 + " (): unknown error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error = &bootstrap.UnreachableError{Peers: tt.peers}
			if got := err.Error(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if !errors.Is(err, bootstrap.ErrUnreachable) {
				t.Errorf("errors.Is(err, ErrUnreachable) is false")
			}
			if got, want := errors.Is(err, refused), len(tt.peers) > 0; got != want {
				t.Errorf("errors.Is(err, peer error): got %v, want %v", got, want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	with := func(f func(*bootstrap.Config)) bootstrap.Config {
		c := bootstrap.DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  bootstrap.Config
		want error
	}{
		{"default", bootstrap.DefaultConfig(), nil},
		{"zero", bootstrap.Config{}, nil},
		{"negative attempts", with(func(c *bootstrap.Config) { c.Attempts = -1 }), bootstrap.ErrBadConfig},
		{"negative backoff", with(func(c *bootstrap.Config) { c.Backoff = -time.Second }), bootstrap.ErrBadConfig},
		{"negative max backoff", with(func(c *bootstrap.Config) { c.MaxBackoff = -time.Second }), bootstrap.ErrBadConfig},
		{"negative dial timeout", with(func(c *bootstrap.Config) { c.DialTimeout = -time.Second }), bootstrap.ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := bootstrap.DefaultConfig()
	if c.Attempts != 3 || c.Backoff != 200*time.Millisecond || c.MaxBackoff != 2*time.Second ||
		c.DialTimeout != 5*time.Second || c.Resolver != nil || c.Logger != nil || c.OnAttempt != nil {
		t.Errorf("DefaultConfig() = %+v, want the documented defaults", c)
	}
}
