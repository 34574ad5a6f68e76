package dht

import (
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
)

// store indexes the verified records a node holds, per service and peer:
// its own, and those put to it. kad-dht's value store cannot list one
// service's records, so the registry protocol serves from here. Only
// verified records enter; expired ones are dropped as they are met.
type store struct {
	mu    sync.Mutex
	bySvc map[cid.Cid]map[peer.ID]held
	count int // records held, all services
}

// Store bounds: a put beyond them is refused with ErrStoreFull.
const (
	// MaxRecordsPerService is the most providers one service is indexed for.
	MaxRecordsPerService = 1024
	// MaxStoredRecords is the most records one node indexes.
	MaxStoredRecords = 1 << 17
)

// held is one record in the store: parsed and as sealed.
type held struct {
	svc *record.Service
	env []byte
}

func newStore() *store { return &store{bySvc: make(map[cid.Cid]map[peer.ID]held)} }

// all returns every unexpired record held for service c.
func (s *store) all(c cid.Cid, now time.Time) [][]byte { return s.list(c, now, MaxRecordsPerService) }

// put stores a verified record for service c, refusing one whose seq is
// not above the record held for the same peer (record.ErrOlderSeq).
func (s *store) put(c cid.Cid, svc *record.Service, env []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	peers := s.bySvc[c]
	if peers == nil {
		peers = make(map[peer.ID]held)
		s.bySvc[c] = peers
	}
	cur, ok := peers[svc.Peer]
	switch {
	case ok:
		if err := record.Newer(cur.svc, svc); err != nil {
			return err
		}
	case len(peers) >= MaxRecordsPerService || s.count >= MaxStoredRecords:
		return ErrStoreFull
	default:
		s.count++
	}
	peers[svc.Peer] = held{svc: svc, env: env}
	return nil
}

// get returns p's record for service c.
func (s *store) get(c cid.Cid, p peer.ID) (held, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.bySvc[c][p]
	return h, ok
}

// list returns up to limit unexpired records for service c, tombstones
// included (a finder must learn that a provider withdrew), dropping
// expired ones as it goes.
func (s *store) list(c cid.Cid, now time.Time, limit int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for p, h := range s.bySvc[c] {
		if !now.Before(h.svc.ExpiresAt) {
			delete(s.bySvc[c], p)
			s.count--
			continue
		}
		if len(out) < limit {
			out = append(out, h.env)
		}
	}
	if len(s.bySvc[c]) == 0 {
		delete(s.bySvc, c)
	}
	return out
}
