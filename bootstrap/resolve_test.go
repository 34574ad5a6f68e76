package bootstrap_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"

	"github.com/netget/netget-peer/bootstrap"
)

// testResolver resolves *.test names from fixed records and everything else
// (localhost, *.invalid) with the system resolver, which answers both
// without the network.
func testResolver(t *testing.T) *madns.Resolver {
	t.Helper()
	ip := func(s string) []net.IPAddr { return []net.IPAddr{{IP: net.ParseIP(s)}} }
	mock := &madns.MockResolver{
		IP: map[string][]net.IPAddr{"reg.test": ip("10.0.0.2")},
		TXT: map[string][]string{
			"_dnsaddr.boot.test": {
				"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/" + id1,
				"dnsaddr=/dns4/reg.test/tcp/4001/p2p/" + id2,
				"dnsaddr=/ip6/::1/tcp/4001/p2p/" + id1,
				"not a dnsaddr record",
			},
			"_dnsaddr.chain.test":  {"dnsaddr=/dnsaddr/boot.test/p2p/" + id2},
			"_dnsaddr.loop.test":   {"dnsaddr=/dnsaddr/loop.test"},
			"_dnsaddr.nopeer.test": {"dnsaddr=/ip4/10.0.0.3/tcp/1"},
			"_dnsaddr.halfbad.test": {
				"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/" + id1,
				"dnsaddr=/dns4/gone.test/tcp/4001/p2p/" + id2,
			},
		},
	}
	r, err := madns.NewResolver(madns.WithDomainResolver("test", mock))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		addrs   []string
		want    string // peers as "ID: addr addr; ID: addr"
		wantErr error
		errHas  []string
	}{
		{name: "ip4 passes through", addrs: []string{"/ip4/127.0.0.1/tcp/9/p2p/" + id1},
			want: id1 + ": /ip4/127.0.0.1/tcp/9"},
		{name: "dns4 localhost", addrs: []string{"/dns4/localhost/tcp/4001/p2p/" + id1},
			want: id1 + ": /ip4/127.0.0.1/tcp/4001"},
		{name: "grouped by peer, duplicates dropped", addrs: []string{
			"/ip4/127.0.0.1/tcp/4001/p2p/" + id1, "/ip4/10.0.0.9/tcp/1/p2p/" + id2, "/dns4/localhost/tcp/4001/p2p/" + id1},
			want: id1 + ": /ip4/127.0.0.1/tcp/4001; " + id2 + ": /ip4/10.0.0.9/tcp/1"},
		{name: "unresolvable name", addrs: []string{"/dns4/does-not-exist.invalid/tcp/1/p2p/" + id2},
			wantErr: bootstrap.ErrResolve, errHas: []string{"/dns4/does-not-exist.invalid/tcp/1/p2p/" + id2}},
		{name: "partial", addrs: []string{"/dns4/does-not-exist.invalid/tcp/1/p2p/" + id2, "/dns4/localhost/tcp/4001/p2p/" + id1},
			want: id1 + ": /ip4/127.0.0.1/tcp/4001", wantErr: bootstrap.ErrResolve, errHas: []string{"does-not-exist.invalid"}},
		{name: "dnsaddr, nested dns4", addrs: []string{"/dnsaddr/boot.test"},
			want: id1 + ": /ip4/10.0.0.1/tcp/4001 /ip6/::1/tcp/4001; " + id2 + ": /ip4/10.0.0.2/tcp/4001"},
		{name: "dnsaddr filtered by peer", addrs: []string{"/dnsaddr/boot.test/p2p/" + id2},
			want: id2 + ": /ip4/10.0.0.2/tcp/4001"},
		{name: "dnsaddr chain", addrs: []string{"/dnsaddr/chain.test"},
			want: id2 + ": /ip4/10.0.0.2/tcp/4001"},
		{name: "dnsaddr loop", addrs: []string{"/dnsaddr/loop.test"},
			wantErr: bootstrap.ErrResolve, errHas: []string{"/dnsaddr/loop.test: more than 4 DNS lookups"}},
		{name: "dnsaddr without records", addrs: []string{"/dnsaddr/empty.test"},
			wantErr: bootstrap.ErrResolve, errHas: []string{"/dnsaddr/empty.test: no addresses"}},
		{name: "dnsaddr partly unresolvable", addrs: []string{"/dnsaddr/halfbad.test"},
			want: id1 + ": /ip4/10.0.0.1/tcp/4001", wantErr: bootstrap.ErrResolve,
			errHas: []string{"/dns4/gone.test/tcp/4001/p2p/" + id2 + " (from /dnsaddr/halfbad.test)"}},
		{name: "dnsaddr record without peer ID", addrs: []string{"/dnsaddr/nopeer.test"},
			wantErr: bootstrap.ErrBadAddr, errHas: []string{"/ip4/10.0.0.3/tcp/1 (from /dnsaddr/nopeer.test)"}},
		{name: "nothing", addrs: nil, want: ""},
	}
	r := testResolver(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := bootstrap.Resolve(ctx, r, multiaddrs(t, tt.addrs...))
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err: got %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if s := infoString(got); s != tt.want {
				t.Errorf("got  %s\nwant %s", s, tt.want)
			}
		})
	}
}

// TestResolveNilResolver resolves with the system's resolver.
func TestResolveNilResolver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := bootstrap.Resolve(ctx, nil, multiaddrs(t, "/dns4/localhost/tcp/4001/p2p/"+id1))
	if err != nil {
		t.Fatal(err)
	}
	if s, want := infoString(got), id1+": /ip4/127.0.0.1/tcp/4001"; s != want {
		t.Errorf("got %s, want %s", s, want)
	}
}

func multiaddrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, s := range ss {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func infoString(infos []peer.AddrInfo) string {
	var parts []string
	for _, ai := range infos {
		s := ai.ID.String() + ":"
		for _, a := range ai.Addrs {
			s += " " + a.String()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
