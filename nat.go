package netget

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

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

// awaitRelayAddrs waits, on a node that believes itself private and has
// registries to relay through, until the host advertises a circuit
// address, so that a first record is not published with private
// addresses only (which a public registry refuses). It gives up after
// Config.RelayWait or when ctx ends, and the record goes out with what
// there is; a later change of addresses republishes it.
func (n *Node) awaitRelayAddrs(ctx context.Context) {
	if n.cfg.RelayWait <= 0 || n.cfg.Host.Reachability == p2p.ReachabilityPublic || len(n.relayCandidates()) == 0 {
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
		if st.Reachability != network.ReachabilityPrivate || len(st.RelayAddrs) > 0 {
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
