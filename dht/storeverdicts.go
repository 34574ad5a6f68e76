package dht

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht/store"
	"github.com/netget/netget-peer/record"
)

// storeVerdicts is the node's health verdicts as its record store asks for
// them (store.Verdicts): the store depends on this handful of methods, not
// on the Node or the health monitor.
type storeVerdicts struct{ v *verdicts }

var _ store.Verdicts = storeVerdicts{}

// Admit implements store.Verdicts (verdicts.admit: the address policy).
func (s storeVerdicts) Admit(svc *record.Service) error { return s.v.admit(svc) }

// Arrived implements store.Verdicts.
func (s storeVerdicts) Arrived(p peer.ID) { s.v.arrived(p) }

// Left implements store.Verdicts.
func (s storeVerdicts) Left(p peer.ID) { s.v.left(p) }

// Serves implements store.Verdicts.
func (s storeVerdicts) Serves(p peer.ID) bool { return s.v.serves(p) }

// Expendable implements store.Verdicts.
func (s storeVerdicts) Expendable(p peer.ID) (ok, unhealthy bool) { return s.v.expendable(p) }

// Rank implements store.Verdicts.
func (s storeVerdicts) Rank(a, b peer.ID) int { return s.v.rank(a, b) }

// Epoch implements store.Verdicts.
func (s storeVerdicts) Epoch() uint64 { return s.v.epoch.Load() }
