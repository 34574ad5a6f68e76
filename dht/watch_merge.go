package dht

import (
	"context"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/registry"
	"github.com/netget/netget-peer/record"
)

// maxWatchedPeers bounds the providers one watch keeps track of, as a
// registry bounds one service's records; past it, providers that left the
// set are forgotten first, and then newcomers are ignored.
const maxWatchedPeers = MaxRecordsPerService

// regMsg is one verified message of one registry's stream.
type regMsg struct {
	reg    peer.ID
	kind   string // registry.Watch*, msgBegin (a new stream) or msgForget (registry gone)
	peer   peer.ID
	reason string
	rec    *record.Service // an upsert's record, or a withdrawn remove's tombstone
}

const (
	msgBegin  = "begin"
	msgForget = "forget"
)

// apply takes one registry message into the merged set and returns the
// providers whose place in the set changed. w.mu must be held.
func (w *watch) apply(m regMsg) []peer.ID {
	if snap := w.snaps[m.reg]; snap != nil && m.peer != "" {
		snap[m.peer] = true
	}
	switch m.kind {
	case msgBegin:
		w.snaps[m.reg] = make(map[peer.ID]bool)
	case registry.WatchUpsert:
		return w.upsert(m.reg, m.rec)
	case registry.WatchRemove:
		if m.rec != nil {
			return w.withdrawn(m.rec)
		}
		return w.remove(m.reg, m.peer, m.reason)
	case registry.WatchSynced:
		return w.reconcile(m.reg)
	case msgForget:
		delete(w.snaps, m.reg)
		return w.forget(m.reg, func(peer.ID) bool { return true })
	}
	return nil // pending: the registry holds it, undecided; what it said before stands
}

// peer returns p's state, creating it unless the watch is full.
func (w *watch) peer(p peer.ID) *watchPeer {
	st := w.peers[p]
	if st != nil {
		return st
	}
	if len(w.peers) >= maxWatchedPeers {
		for q, old := range w.peers {
			if old.cur == nil && len(old.by) == 0 {
				delete(w.peers, q)
				break
			}
		}
		if len(w.peers) >= maxWatchedPeers {
			return nil
		}
	}
	st = &watchPeer{by: make(map[peer.ID]uint64)}
	w.peers[p] = st
	return st
}

func (w *watch) upsert(reg peer.ID, s *record.Service) []peer.ID {
	st := w.peer(s.Peer)
	if st == nil || s.Seq <= st.tomb {
		return nil // no room, or older than its withdrawal
	}
	st.by[reg] = s.Seq
	if st.cur != nil && s.Seq <= st.cur.Seq {
		return nil
	}
	st.cur, st.reason = s, ""
	return []peer.ID{s.Peer}
}

// withdrawn applies a verified tombstone, whichever registry sent it.
func (w *watch) withdrawn(t *record.Service) []peer.ID {
	st := w.peer(t.Peer)
	if st == nil {
		return nil
	}
	st.tomb = max(st.tomb, t.Seq)
	for r, seq := range st.by {
		if seq <= st.tomb {
			delete(st.by, r)
		}
	}
	if st.cur == nil || st.cur.Seq > st.tomb {
		return nil
	}
	st.cur, st.reason = nil, ReasonWithdrawn
	return []peer.ID{t.Peer}
}

// remove notes that reg no longer serves p, and takes p out of the set
// once no registry does.
func (w *watch) remove(reg, p peer.ID, reason string) []peer.ID {
	st := w.peers[p]
	if st == nil {
		return nil
	}
	delete(st.by, reg)
	if len(st.by) > 0 || st.cur == nil {
		return nil
	}
	st.cur, st.reason = nil, reason
	return []peer.ID{p}
}

// reconcile ends reg's snapshot: providers reg served before that its
// snapshot did not name are gone from it. The first registry to sync
// after the DHT poller stopped also retires what the poller found.
func (w *watch) reconcile(reg peer.ID) []peer.ID {
	snap := w.snaps[reg]
	delete(w.snaps, reg)
	w.synced = true
	changed := w.forget(reg, func(p peer.ID) bool { return !snap[p] })
	if _, polling := w.regs[""]; reg != "" && !polling {
		changed = append(changed, w.forget("", func(peer.ID) bool { return true })...)
	}
	return changed
}

// forget removes reg's word on every provider it served that gone
// selects, with the reason the provider vanished for.
func (w *watch) forget(reg peer.ID, gone func(peer.ID) bool) []peer.ID {
	var changed []peer.ID
	for p, st := range w.peers {
		if _, ok := st.by[reg]; ok && gone(p) {
			changed = append(changed, w.remove(reg, p, w.goneReason(st))...)
		}
	}
	return changed
}

// goneReason is why a provider that vanished from a registry's view is
// gone: its record expired, or the registry deleted it.
func (w *watch) goneReason(st *watchPeer) string {
	if st.cur != nil && !w.n.now().Before(st.cur.ExpiresAt) {
		return ReasonExpired
	}
	return ReasonDeregistered
}

// watched returns the records of c's providers in the set of this node's
// watch of c, or nil when none runs or its first snapshot is not complete.
func (n *Node) watched(c cid.Cid) []*record.Service {
	n.watchMu.Lock()
	w := n.watches[c]
	n.watchMu.Unlock()
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.synced {
		return nil
	}
	out := make([]*record.Service, 0, len(w.peers))
	now := n.now()
	for _, st := range w.peers {
		if st.cur != nil && now.Before(st.cur.ExpiresAt) {
			out = append(out, st.cur)
		}
	}
	return out
}

// offerWatched streams the providers in the set of this node's watch of
// the service at once, as Source "watch": verified when they arrived, and
// live.
func (f *search) offerWatched(ctx context.Context) {
	for _, s := range f.n.watched(f.c) {
		if first, last, ok := f.claim(s); ok {
			f.send(ctx, found{rec: s, src: SourceWatch, first: first, last: last})
		}
	}
}
