package dht

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/registry"
)

// forwarder sends one sync peer the records this node takes, as they
// arrive: whatever queued while the last forward was in flight goes in the
// next, up to registry.MaxForward records and registry.PullBudget bytes,
// so a burst of pushes costs few round trips. Its queue is bounded
// (Sync.ForwardQueue); a record that finds it full is left to the next
// reconciliation. It runs until stop or the node's close.
type forwarder struct {
	s     *syncer
	p     peer.ID
	queue chan []byte
	done  chan struct{}
	once  sync.Once
}

// newForwarder starts p's forwarder, owned by the node.
func (s *syncer) newForwarder(p peer.ID) *forwarder {
	f := &forwarder{s: s, p: p, queue: make(chan []byte, s.cfg.ForwardQueue), done: make(chan struct{})}
	s.n.wg.Add(1)
	go func() {
		defer s.n.wg.Done()
		f.run()
	}()
	return f
}

// offer queues env without waiting, and reports whether there was room.
func (f *forwarder) offer(env []byte) bool {
	select {
	case f.queue <- env:
		return true
	default:
		return false
	}
}

// stop ends the forwarder; what is queued is dropped.
func (f *forwarder) stop() { f.once.Do(func() { close(f.done) }) }

func (f *forwarder) run() {
	n := f.s.n
	for {
		var batch [][]byte
		select {
		case <-n.ctx.Done():
			return
		case <-f.done:
			return
		case env := <-f.queue:
			batch = append(batch, env)
		}
		size := len(batch[0])
	more:
		for len(batch) < registry.MaxForward {
			select {
			case env := <-f.queue:
				if size+len(env) > registry.PullBudget {
					f.send(batch)
					batch, size = nil, 0
				}
				batch = append(batch, env)
				size += len(env)
			default:
				break more
			}
		}
		f.send(batch)
	}
}

// send forwards one batch, bounded by Config.FetchTimeout.
func (f *forwarder) send(batch [][]byte) {
	n := f.s.n
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.FetchTimeout)
	defer cancel()
	refused, err := f.s.client.Forward(ctx, f.p, batch)
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Debug("forward to sync peer failed", "peer", f.p, "records", len(batch), "err", err)
		}
		return
	}
	f.s.forwarded.Add(uint64(len(batch) - refused))
}
