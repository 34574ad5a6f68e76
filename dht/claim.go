package dht

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/netget/netget-peer/record"
)

// found is a verified record claimed for streaming (see claim).
type found struct {
	rec         *record.Service
	src         Source
	first, last bool
}

// offer verifies env as a record for the service and streams it if it is
// the first live record for its peer; tombstones close the peer.
func (f *search) offer(ctx context.Context, env []byte, src Source) {
	if r, ok := f.take(env, src); ok {
		f.send(ctx, r)
	}
}

// take verifies env as a record for the service and claims it if it is the
// first live record for its peer. Every holder returns the same bytes:
// each envelope is verified once per search, and hashed once (the
// validator's cache takes the same sum).
func (f *search) take(env []byte, src Source) (found, bool) {
	sum := sha256.Sum256(env)
	f.mu.Lock()
	seen := f.offered[sum]
	f.offered[sum] = true
	f.mu.Unlock()
	if seen {
		return found{}, false
	}
	s, err := f.n.validator.OpenForSum(f.c, sum, env)
	if err != nil {
		f.n.metrics.record(err)
		f.n.log.Info("rejected record", "service", f.c, "source", src, "err", err)
		return found{}, false
	}
	first, last, ok := f.claim(s)
	return found{rec: s, src: src, first: first, last: last}, ok
}

// send streams claimed record r. It never holds f.mu while it waits for
// the consumer: a slow reader must not stall the search's other asks and
// fetches. If ctx ends first, r's claim is given back.
func (f *search) send(ctx context.Context, r found) {
	select {
	case f.out <- Result{Record: r.rec, Source: r.src, Elapsed: time.Since(f.start)}:
		f.n.metrics.result(r.src, time.Since(f.start), r.first)
		if r.last {
			f.cancel()
		}
	case <-ctx.Done():
		f.mu.Lock()
		f.state(r.rec.Peer).done = false
		f.emitted--
		f.mu.Unlock()
	}
}

// claim takes verified record s into the search's state and reports
// whether it is to be streamed (ok), as the search's first result and as
// the one that reaches its limit (last). A record to stream is counted
// here, under f.mu, so that no other holder's copy streams it twice.
func (f *search) claim(s *record.Service) (first, last, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state(s.Peer)
	if st.verified && s.Seq <= st.seq {
		return false, false, false
	}
	st.verified, st.seq = true, s.Seq
	f.changed.Broadcast()
	if st.done || s.Withdrawn {
		return false, false, false // streamed already, or withdrawn (a newer live record may follow)
	}
	if f.limit > 0 && f.emitted >= f.limit {
		return false, false, false
	}
	st.done = true
	first = f.emitted == 0
	f.emitted++
	return first, f.limit > 0 && f.emitted >= f.limit, true
}
