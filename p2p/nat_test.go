package p2p_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/p2p"
	"github.com/netget/netget-peer/p2p/p2ptest"
)

func TestParseReachability(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    p2p.Reachability
		wantErr bool
	}{
		{"auto", p2p.ReachabilityAuto, false},
		{"public", p2p.ReachabilityPublic, false},
		{"private", p2p.ReachabilityPrivate, false},
		{"Private", 0, true},
		{"", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := p2p.ParseReachability(tc.in)
			if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
				t.Fatalf("ParseReachability(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, p2p.ErrBadConfig) {
				t.Fatalf("error %v is not ErrBadConfig", err)
			}
			if err == nil && got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestRelayServiceValidate(t *testing.T) {
	ok := p2p.DefaultRelayService()
	ok.Enabled = true
	for _, tc := range []struct {
		name   string
		change func(*p2p.RelayService)
		valid  bool
	}{
		{"defaults", func(*p2p.RelayService) {}, true},
		{"off ignores limits", func(r *p2p.RelayService) { r.Enabled, r.MaxReservations = false, 0 }, true},
		{"no reservations", func(r *p2p.RelayService) { r.MaxReservations = 0 }, false},
		{"no per-IP slot", func(r *p2p.RelayService) { r.MaxReservationsPerIP = 0 }, false},
		{"no circuits", func(r *p2p.RelayService) { r.MaxCircuits = -1 }, false},
		{"unbounded duration", func(r *p2p.RelayService) { r.CircuitDuration = 0 }, false},
		{"unbounded bytes", func(r *p2p.RelayService) { r.CircuitBytes = 0 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.change(&r)
			cfg := p2ptest.Config()
			cfg.RelayService = r
			if err := cfg.Validate(); (err == nil) != tc.valid {
				t.Fatalf("Validate() = %v, want valid %v", err, tc.valid)
			}
		})
	}
}

// relayHost starts a public host serving the relay with limits r, and
// waits until it speaks the relay protocol.
func relayHost(t *testing.T, r p2p.RelayService) host.Host {
	t.Helper()
	cfg := p2ptest.Config()
	cfg.Reachability, cfg.RelayService = p2p.ReachabilityPublic, r
	cfg.RelayService.Enabled = true
	h := p2ptest.NewHostFrom(t, cfg)
	waitFor(t, "the relay service", func() bool { return slices.Contains(h.Mux().Protocols(), protocol.ID(proto.ProtoIDv2Hop)) })
	return h
}

// hostAt starts a host behind NAT, as its relay sees it, on loopback
// address ip (each 127.0.0.x is its own IP to the relay: TCP dials leave
// from the listen address). It does not hole-punch: on loopback every
// punch succeeds, and these tests are about the relayed connection.
func hostAt(t *testing.T, ip string) host.Host {
	t.Helper()
	cfg := p2ptest.Config()
	cfg.ListenAddrs = []string{"/ip4/" + ip + "/tcp/0"}
	cfg.Reachability, cfg.HolePunching = p2p.ReachabilityPrivate, false
	return p2ptest.NewHostFrom(t, cfg)
}

// dialer starts a host that reaches others through relays, without hole
// punching.
func dialer(t *testing.T) host.Host {
	t.Helper()
	cfg := p2ptest.Config()
	cfg.HolePunching = false
	return p2ptest.NewHostFrom(t, cfg)
}

// reserve asks relay r for a slot the way any peer can (the attacker's
// own request), and returns the relay's status: OK or its refusal.
func reserve(t *testing.T, h, r host.Host) pbv2.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.Reserve(ctx, h, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()})
	var re client.ReservationError
	switch {
	case err == nil:
		return pbv2.Status_OK
	case errors.As(err, &re) && re.Status != pbv2.Status_CONNECTION_FAILED:
		return re.Status
	}
	t.Fatalf("reserve on the relay: %v", err)
	return 0
}

// circuit is the address of h through relay r.
func circuit(t *testing.T, r, h host.Host) peer.AddrInfo {
	t.Helper()
	a, err := ma.NewMultiaddr(r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	return peer.AddrInfo{ID: h.ID(), Addrs: []ma.Multiaddr{a}}
}

// pingVia connects d to h through relay r only and pings h on that
// relayed (limited) connection.
func pingVia(t *testing.T, d, r, h host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Only the circuit: not the direct addresses identify taught d.
	d.Peerstore().ClearAddrs(h.ID())
	if err := d.Connect(ctx, circuit(t, r, h)); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	res := <-ping.Ping(ctx, d, h.ID())
	if res.Error != nil {
		t.Fatalf("ping through the relay: %v", res.Error)
	}
	if d.Network().Connectedness(h.ID()) != network.Limited {
		t.Fatalf("connectedness %v, want a relayed (limited) connection", d.Network().Connectedness(h.ID()))
	}
}

// TestRelayServiceBounds sends a relay more reservation requests than its
// limits allow, per IP and in all: each one over is refused
// (RESERVATION_REFUSED, go-libp2p's status for both), and the slots
// already held keep working.
func TestRelayServiceBounds(t *testing.T) {
	lim := p2p.DefaultRelayService()
	lim.MaxReservations, lim.MaxReservationsPerIP = 3, 2
	r := relayHost(t, lim)
	held := []host.Host{hostAt(t, "127.0.0.1"), hostAt(t, "127.0.0.1")}
	for i, h := range held {
		if got := reserve(t, h, r); got != pbv2.Status_OK {
			t.Fatalf("reservation %d: %v, want OK", i, got)
		}
	}
	if got := reserve(t, hostAt(t, "127.0.0.1"), r); got != pbv2.Status_RESERVATION_REFUSED {
		t.Fatalf("third reservation from one IP: %v, want RESERVATION_REFUSED", got)
	}
	third := hostAt(t, "127.0.0.2")
	if got := reserve(t, third, r); got != pbv2.Status_OK {
		t.Fatalf("reservation from another IP: %v, want OK", got)
	}
	held = append(held, third)
	if got := reserve(t, hostAt(t, "127.0.0.3"), r); got != pbv2.Status_RESERVATION_REFUSED {
		t.Fatalf("reservation over the total: %v, want RESERVATION_REFUSED", got)
	}
	// Refreshing a slot is no new slot.
	if got := reserve(t, held[0], r); got != pbv2.Status_OK {
		t.Fatalf("refresh of a held slot: %v, want OK", got)
	}
	d := dialer(t)
	for _, h := range held {
		pingVia(t, d, r, h)
	}
}

// sinkProto is the test protocol a relayed peer reads everything from.
const sinkProto = "/netget/test/sink/1.0.0"

// TestRelayCircuitBytes pushes more than a circuit's byte budget through
// the relay: the relay resets the circuit before the budget is much
// exceeded, and a new circuit to the same peer works.
func TestRelayCircuitBytes(t *testing.T) {
	lim := p2p.DefaultRelayService()
	lim.CircuitBytes = 16 << 10
	r := relayHost(t, lim)
	h := hostAt(t, "127.0.0.1")
	var got counter
	h.SetStreamHandler(sinkProto, func(s network.Stream) {
		io.Copy(&got, s)
		s.Reset()
	})
	if st := reserve(t, h, r); st != pbv2.Status_OK {
		t.Fatalf("reserve: %v", st)
	}
	d := dialer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Connect(ctx, circuit(t, r, h)); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	s, err := d.NewStream(network.WithAllowLimitedConn(ctx, "test"), h.ID(), sinkProto)
	if err != nil {
		t.Fatalf("stream through the relay: %v", err)
	}
	buf := make([]byte, 1<<10)
	sent, werr := 0, error(nil)
	for sent < 64*int(lim.CircuitBytes) && werr == nil { // bounded: 64 budgets at most
		var n int
		n, werr = s.Write(buf)
		sent += n
	}
	if werr == nil {
		t.Fatalf("wrote %d bytes through a circuit bounded to %d each way: never reset", sent, lim.CircuitBytes)
	}
	waitFor(t, "the relay to close the circuit", func() bool {
		return d.Network().Connectedness(h.ID()) == network.NotConnected
	})
	if n := got.Load(); n > 2*lim.CircuitBytes {
		t.Fatalf("the relayed peer received %d bytes, over twice the budget of %d", n, lim.CircuitBytes)
	}
	t.Logf("circuit reset after %d bytes written, %d received (budget %d)", sent, got.Load(), lim.CircuitBytes)
	pingVia(t, d, r, h) // the reset cost the circuit, not the slot
}

// counter counts the bytes written to it.
type counter struct{ atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.Add(int64(len(p)))
	return len(p), nil
}

// waitFor polls cond until it holds, failing after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
