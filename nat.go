package netget

import (
	"context"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/netget/netget-peer/p2p"
)

// Reachability is how a node is reached now, for Status.
type Reachability struct {
	// State is "public", "private" or "unknown" (AutoNAT has not decided).
	State string
	// Relays are the relays (registries) the node holds a slot on, and
	// RelayAddrs its circuit addresses through them
	// (<relay addr>/p2p/<relay>/p2p-circuit), which its records carry
	// while it is private.
	Relays     []peer.ID
	RelayAddrs []string
}

// reachability returns how the node is reached now.
func (n *Node) reachability() Reachability {
	st := p2p.Status(n.host)
	r := Reachability{State: "unknown", Relays: st.Relays}
	switch st.Reachability {
	case network.ReachabilityPublic:
		r.State = "public"
	case network.ReachabilityPrivate:
		r.State = "private"
	}
	for _, a := range st.RelayAddrs {
		r.RelayAddrs = append(r.RelayAddrs, a.String())
	}
	return r
}

// relayCandidates are the relays a node that is not public reserves a
// slot on: its connected registries, at the addresses it knows for them.
// AutoRelay calls it from its own goroutine, from the moment the host
// starts; it sees no registry before New has built the DHT.
func (n *Node) relayCandidates() []peer.AddrInfo {
	d := n.relayDHT.Load()
	if d == nil {
		return nil
	}
	h := d.Host()
	var out []peer.AddrInfo
	for _, p := range d.Registries() {
		out = append(out, peer.AddrInfo{ID: p, Addrs: h.Peerstore().Addrs(p)})
	}
	return out
}

// AwaitRelay waits, on a node that believes itself private and has
// registries with a public address to relay through, until the host
// advertises a circuit address, so that a record published next carries
// it (a public registry refuses a record with private addresses only). It
// gives up after Config.RelayWait or when ctx ends; records are
// republished whenever the node's addresses change anyway. Provide and
// ProvideLater call it before their first publication; call it before
// publishing through DHT().Provide.
func (n *Node) AwaitRelay(ctx context.Context) {
	if n.cfg.RelayWait <= 0 || n.cfg.Host.Reachability == p2p.ReachabilityPublic || !publicRelay(n.relayCandidates()) {
		return
	}
	sub, err := n.host.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		return
	}
	defer sub.Close()
	t := time.NewTimer(n.cfg.RelayWait)
	defer t.Stop()
	for {
		st := p2p.Status(n.host)
		private := st.Reachability == network.ReachabilityPrivate || n.cfg.Host.Reachability == p2p.ReachabilityPrivate
		if !private || len(st.RelayAddrs) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.log.Warn("no relay slot yet; publishing without relay addresses", "waited", n.cfg.RelayWait)
			return
		case <-sub.Out():
		}
	}
}

// publicRelay reports whether a relay among rs has a public address: only
// those make circuit addresses (go-libp2p's AutoRelay drops the others),
// so on a LAN or loopback there is nothing to wait for.
func publicRelay(rs []peer.AddrInfo) bool {
	for _, r := range rs {
		if slices.ContainsFunc(r.Addrs, manet.IsPublicAddr) {
			return true
		}
	}
	return false
}
