package bootstrap_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/netget/netget-peer/bootstrap"
)

// Fixed, valid peer IDs for tests that never dial them.
const (
	id1 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	id2 = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	// qm1 is an RSA-style (sha2-256) peer ID, written with /ipfs/ by older
	// tools.
	qm1 = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
)

func TestParseAddrs(t *testing.T) {
	a := "/ip4/127.0.0.1/tcp/4001/p2p/" + id1
	b := "/dns4/registry1.netget.me/tcp/4001/p2p/" + id2
	tests := []struct {
		name    string
		flags   []string
		env     string
		want    []string
		wantErr error
		errHas  []string // substrings the error must contain
	}{
		{name: "one flag", flags: []string{a}, want: []string{a}},
		{name: "flags then env, spaces and empties", flags: []string{" " + a + " ,, "}, env: " , " + b + " ,", want: []string{a, b}},
		{name: "several per flag", flags: []string{a + "," + b}, want: []string{a, b}},
		{name: "duplicates dropped, order kept", flags: []string{b, a + "," + b}, env: a, want: []string{b, a}},
		{name: "/ipfs/ is /p2p/", flags: []string{"/ip4/1.2.3.4/tcp/1/p2p/" + qm1, "/ip4/1.2.3.4/tcp/1/ipfs/" + qm1}, want: []string{"/ip4/1.2.3.4/tcp/1/p2p/" + qm1}},
		{name: "quic and dns6", env: "/dns6/reg.netget.me/udp/4001/quic-v1/p2p/" + id1, want: []string{"/dns6/reg.netget.me/udp/4001/quic-v1/p2p/" + id1}},
		{name: "dnsaddr without p2p", env: "/dnsaddr/bootstrap.netget.me", want: []string{"/dnsaddr/bootstrap.netget.me"}},
		{name: "dnsaddr with p2p", env: "/dnsaddr/bootstrap.netget.me/p2p/" + id1, want: []string{"/dnsaddr/bootstrap.netget.me/p2p/" + id1}},
		{name: "nothing", want: nil},
		{name: "only commas and spaces", flags: []string{" , ,"}, env: ",", want: nil},
		{name: "missing p2p", flags: []string{a, "/ip4/127.0.0.1/tcp/4001"}, wantErr: bootstrap.ErrBadAddr,
			errHas: []string{`"/ip4/127.0.0.1/tcp/4001"`, "must end in /p2p/<peer ID>"}},
		{name: "missing p2p in env names the variable", env: "/dns4/registry1.netget.me/tcp/4001", wantErr: bootstrap.ErrBadAddr,
			errHas: []string{`"/dns4/registry1.netget.me/tcp/4001"`, bootstrap.EnvVar}},
		{name: "p2p not last", flags: []string{"/ip4/1.2.3.4/tcp/1/p2p/" + id1 + "/p2p-circuit"}, wantErr: bootstrap.ErrBadAddr,
			errHas: []string{"p2p-circuit", "must end in /p2p/<peer ID>"}},
		{name: "peer ID only", flags: []string{"/p2p/" + id1}, wantErr: bootstrap.ErrBadAddr,
			errHas: []string{"no address before /p2p/<peer ID>"}},
		{name: "garbage", env: "registry1:4001", wantErr: bootstrap.ErrBadAddr, errHas: []string{`"registry1:4001"`}},
		{name: "bad peer ID", flags: []string{"/ip4/1.2.3.4/tcp/1/p2p/notapeer"}, wantErr: bootstrap.ErrBadAddr,
			errHas: []string{"notapeer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bootstrap.ParseAddrs(tt.flags, tt.env)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err: got %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			var gotS []string
			for _, m := range got {
				gotS = append(gotS, m.String())
			}
			if strings.Join(gotS, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", gotS, tt.want)
			}
		})
	}
}
