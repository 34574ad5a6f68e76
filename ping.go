package netget

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/record"
)

// Pong is the answer to one Ping.
type Pong struct {
	// RTT is the libp2p ping's round trip.
	RTT time.Duration
	// Relayed reports that the node reaches the provider only through a
	// relay (a limited connection, bounded by the relay in time and bytes);
	// false once a direct connection exists (dialled, or upgraded by hole
	// punching).
	Relayed bool
	// Addr is the remote address of the connection the node holds to the
	// provider, a circuit address when Relayed.
	Addr ma.Multiaddr
}

// Ping reaches the provider of a verified record at the addresses it
// signed, through a relay when it names one (…/p2p/<relay>/p2p-circuit),
// and measures one libp2p ping round trip. ctx bounds it all.
func (n *Node) Ping(ctx context.Context, svc *record.Service) (Pong, error) {
	var addrs []ma.Multiaddr
	for _, s := range svc.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: svc.Peer, Addrs: addrs}); err != nil {
		return Pong{}, fmt.Errorf("ping %s: connect: %w", svc.Peer, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops ping.Ping's goroutine after one answer
	res, ok := <-ping.Ping(pctx, n.host, svc.Peer)
	if !ok {
		return Pong{}, fmt.Errorf("ping %s: %w", svc.Peer, ctx.Err())
	}
	if res.Error != nil {
		return Pong{}, fmt.Errorf("ping %s: %w", svc.Peer, res.Error)
	}
	pong := Pong{RTT: res.RTT, Relayed: true}
	for _, c := range n.host.Network().ConnsToPeer(svc.Peer) {
		if pong.Addr == nil || (pong.Relayed && !c.Stat().Limited) {
			pong.Addr, pong.Relayed = c.RemoteMultiaddr(), c.Stat().Limited
		}
	}
	return pong, nil
}
