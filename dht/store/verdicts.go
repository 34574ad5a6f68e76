package store

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/record"
)

// Verdicts is what the store asks of the node's provider health
// bookkeeping: whose records enter, are served, and in what order, and
// whose it may evict. The store tells it when a provider's first record
// arrives and when its last one goes. The dht package's health checks
// implement it; the store never reaches the Node.
type Verdicts interface {
	// Admit returns an error (wrapped) if svc may not enter the store,
	// such as a record with addresses the node's address policy refuses.
	Admit(svc *record.Service) error
	// Arrived notes that a record of p entered the store.
	Arrived(p peer.ID)
	// Left notes that the store holds no record of p any more.
	Left(p peer.ID)
	// Serves reports whether p's records are served now.
	Serves(p peer.ID) bool
	// Expendable reports whether p's records may be evicted to make room
	// for a newcomer, and whether p is unhealthy (evicted first).
	Expendable(p peer.ID) (ok, unhealthy bool)
	// Rank orders providers for a list, as slices.SortFunc takes it:
	// the ones to serve first sort first.
	Rank(a, b peer.ID) int
	// Epoch changes whenever Serves or Rank may answer differently for a
	// provider that already has records in the store (a verdict turned),
	// so the store may keep a list it computed until then.
	Epoch() uint64
}
