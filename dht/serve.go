package dht

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/dht/store"
)

// holder is what a node serves over the registry protocol
// (registry.Holder): its store's records, and the write path every record
// takes.
type holder struct{ n *Node }

// List implements registry.Holder: the unexpired, not withdrawn records
// the store serves for c (a registry leaves out providers found dead).
func (h holder) List(c cid.Cid, limit int) [][]byte {
	return h.n.store.List(h.n.ctx, c, h.n.now(), store.ListOpts{Limit: limit})
}

// Page implements registry.Holder: a page of what List serves, in peer-ID
// order after after.
func (h holder) Page(c cid.Cid, after peer.ID, limit, bytes int) ([][]byte, peer.ID) {
	pg := h.n.store.Page(h.n.ctx, c, h.n.now(), store.PageOpts{After: after, Limit: limit, Bytes: bytes})
	return pg.Records, pg.Next
}

// Accept implements registry.Holder: verified and stored as a DHT write
// is, charged to the address it came from (StoreLimits.PerSource). A
// provider putting its own record has passed its health check by doing so
// (verdicts.vouch): it is served, and announced, at once. Any other
// record is answered once its provider's first check is done, so a
// provider whose push returned is served at once either way (health.go).
func (h holder) Accept(env []byte, from peer.ID, addr ma.Multiaddr) error {
	n := h.n
	svc, _, fresh, err := n.acceptFresh(n.ctx, env, n.store.SourceOf(addr), from)
	if err != nil {
		return err
	}
	// Tell watchers now, from this goroutine, then pass it on to the
	// other registries (sync.go).
	n.watchHub.flush(n.ctx)
	if fresh {
		n.sync.forward(env, "")
	}
	n.health.awaitFirst(n.ctx, svc.Peer, n.health.cfg.Timeout)
	return nil
}
