package dht

import (
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/registry"
)

// watchDropTimeout bounds writing the drop message to a watcher the hub
// dropped (it may not be reading at all).
const watchDropTimeout = time.Second

// handleWatch serves one watch stream (registry.WatchProtocol): the
// request, the snapshot, then the hub's messages, until the watcher ends
// the stream, the hub drops it or the node closes.
func (n *Node) handleWatch(s network.Stream) {
	remote := s.Conn().RemotePeer()
	log := n.log.With("peer", remote, "protocol", s.Protocol())
	if err := s.Scope().SetService(registry.WatchServiceName); err != nil {
		log.Debug("watch stream refused by resource manager", "err", err)
		s.Reset()
		return
	}
	if !n.limiter.Allow(remote) {
		log.Info("watch stream reset: rate limited")
		s.Reset()
		return
	}
	c, err := registry.ReadWatchRequest(s)
	if err != nil {
		log.Info("watch stream reset", "err", err)
		s.Reset()
		return
	}
	w, err := n.watchHub.subscribe(remote, c)
	if err != nil {
		log.Info("watch refused", "service", c, "err", err)
		writeDrop(s, err.Error())
		return
	}
	defer n.watchHub.unsubscribe(w)
	gone := make(chan struct{})
	go func() { // the watcher only writes its request: a read ends when the stream does
		defer close(gone)
		// One byte into an array of its own: io.Copy to io.Discard would
		// hold a pooled 8 KiB buffer for as long as the watch lasts.
		var one [1]byte
		_, _ = s.Read(one[:])
	}()
	defer func() {
		s.Reset() // ends the read above
		<-gone
	}()
	dl := watchWriter{s: s}
	for {
		select {
		case <-w.ready:
			out, ok := w.pop()
			if !ok {
				continue
			}
			if err := n.writeWatch(&dl, w, out); err != nil {
				log.Debug("watch ended", "err", err)
				return
			}
		case <-w.quit:
			log.Info("watch dropped", "service", c, "reason", w.reason)
			_ = s.SetDeadline(time.Now().Add(watchDropTimeout))
			b, err := registry.EncodeWatchMsg(registry.WatchMsg{Type: registry.WatchDrop, Reason: w.reason})
			if err == nil {
				_ = registry.WriteFrame(s, b)
				_ = s.CloseWrite()
			}
			select { // let the watcher read it before the reset
			case <-gone:
			case <-time.After(watchDropTimeout):
			}
			return
		case <-gone:
			return
		case <-n.ctx.Done():
			return
		}
	}
}

// watchWriter writes to one watcher, each write bounded by
// registry.StreamTimeout without arming a timer for every write (yamux
// makes one per SetWriteDeadline; at a change for 1,000 watchers that was
// twice the CPU of the writes): the deadline is pushed out only when less
// than half of it is left, so a write that does not return (a watcher
// that stopped reading) fails within half to all of StreamTimeout.
type watchWriter struct {
	s  network.Stream
	at time.Time // the write deadline set
}

// write writes one frame.
func (d *watchWriter) write(b []byte) error {
	if now := time.Now(); d.at.Sub(now) < registry.StreamTimeout/2 {
		d.at = now.Add(registry.StreamTimeout)
		_ = d.s.SetWriteDeadline(d.at)
	}
	return registry.WriteFrame(d.s, b)
}

// writeWatch writes one queued message (or a snapshot and "synced") to
// the watcher.
func (n *Node) writeWatch(d *watchWriter, w *watcher, out *watchOut) error {
	if out.snap == nil {
		err := d.write(out.enc)
		if err == nil && n.watchHub.wrote != nil {
			n.watchHub.wrote()
		}
		return err
	}
	for p, st := range out.snap {
		m, ok := n.snapshotMsg(w, p, st)
		if !ok {
			continue
		}
		if err := d.writeMsg(m); err != nil {
			return err
		}
	}
	return d.writeMsg(registry.WatchMsg{Type: registry.WatchSynced})
}

// snapshotMsg is what a new watcher is told of provider p, whose state
// the hub last saw as st: served and withdrawn records with the envelope
// the store holds now (any later change follows in the queue).
func (n *Node) snapshotMsg(w *watcher, p peer.ID, st watchState) (registry.WatchMsg, bool) {
	switch st.kind {
	case watchServed, watchWithdrawn:
		env, ok := n.store.Envelope(n.ctx, w.c, p)
		if !ok {
			return registry.WatchMsg{}, false // gone: its remove is queued
		}
		if st.kind == watchServed {
			return registry.WatchMsg{Type: registry.WatchUpsert, Record: env}, true
		}
		return registry.WatchMsg{Type: registry.WatchRemove, Peer: p.String(), Reason: registry.ReasonWithdrawn, Record: env}, true
	case watchUnhealthy:
		return registry.WatchMsg{Type: registry.WatchRemove, Peer: p.String(), Reason: registry.ReasonUnhealthy}, true
	case watchPending:
		return registry.WatchMsg{Type: registry.WatchPending, Peer: p.String()}, true
	}
	return registry.WatchMsg{}, false
}

// writeMsg encodes and writes one message.
func (d *watchWriter) writeMsg(m registry.WatchMsg) error {
	b, err := registry.EncodeWatchMsg(m)
	if err != nil {
		return err
	}
	return d.write(b)
}

// writeDrop tells the watcher why its watch ends, briefly, and closes.
// writeDrop tells the watcher why its watch ends, within
// watchDropTimeout, and resets the stream.
func writeDrop(s network.Stream, reason string) {
	if len(reason) > 256 {
		reason = reason[:256]
	}
	b, err := registry.EncodeWatchMsg(registry.WatchMsg{Type: registry.WatchDrop, Reason: reason})
	if err == nil {
		_ = s.SetDeadline(time.Now().Add(watchDropTimeout))
		if registry.WriteFrame(s, b) == nil && s.CloseWrite() == nil {
			// Let the watcher read it: wait (bounded) for its side to end.
			_, _ = io.Copy(io.Discard, io.LimitReader(s, 1))
		}
	}
	s.Reset()
}
