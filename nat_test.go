package netget_test

import (
	"context"
	"testing"
	"time"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/p2p"
)

// TestReachabilityStatus: a registry says it is public; a service node
// told it is private says so, and on loopback (no relay with a public
// address, so no circuit address to wait for) publishes at once, found
// through a node that pings it.
func TestReachabilityStatus(t *testing.T) {
	reg := registry(t)
	if got := reg.Status().Reachability; got.State != "public" || len(got.Relays) != 0 {
		t.Fatalf("registry reachability %+v, want public without relays", got)
	}
	cfg := netget.Service()
	cfg.Host.Reachability = p2p.ReachabilityPrivate
	cfg.RelayWait = time.Hour // would outlast the provide below if it waited
	prov := start(t, cfg, reg)
	if got := prov.Status().Reachability; got.State != "private" || len(got.RelayAddrs) != 0 {
		t.Fatalf("private node on loopback: reachability %+v, want private with no relay address", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := prov.Provide(ctx, netget.Spec{Name: "DatabaseService"})
	if err != nil {
		t.Fatalf("provide: %v", err)
	}
	finder := start(t, netget.Client(), reg)
	pong, err := finder.Ping(ctx, svc)
	if err != nil {
		t.Fatalf("ping the provider: %v", err)
	}
	if pong.Relayed || pong.Addr == nil {
		t.Fatalf("pong %+v: want a direct connection on loopback", pong)
	}
}

func TestConfigRefusesBadNAT(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*netget.Config)
	}{
		{"negative relay wait", func(c *netget.Config) { c.RelayWait = -time.Second }},
		{"unbounded relay circuits", func(c *netget.Config) { c.Host.RelayService.CircuitBytes = 0 }},
		{"unthrottled autonat", func(c *netget.Config) { c.Host.AutoNATService.PerMinute = 0 }},
		{"unknown reachability", func(c *netget.Config) { c.Host.Reachability = 7 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := netget.Registry()
			cfg.DataDir = t.TempDir()
			tc.change(&cfg)
			if err := cfg.Validate(); err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
		})
	}
}
