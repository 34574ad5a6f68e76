package netget

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/dht"
)

// Status is a snapshot of a node, for a status command or a health check.
type Status struct {
	// ID is the node's peer ID; Network the network it is on.
	ID      peer.ID
	Network string
	// Addrs are the node's full multiaddrs (Node.Addrs).
	Addrs []string
	// Started is when New built the node.
	Started time.Time
	// RoutingTable is how many peers the DHT's routing table holds.
	RoutingTable int
	// Registries are the node's registries, connected or not.
	Registries []RegistryStatus
	// Services are the services the node provides.
	Services []ServiceStatus
	// StoredRecords is how many signed records the node holds.
	StoredRecords int
	// BridgeURL is the bridge's base URL, "" without a bridge.
	BridgeURL string
	// Reachability is how the node is reached: public, private (through
	// which relays, at which circuit addresses) or unknown.
	Reachability Reachability
	// Sync is what a registry's sync with the other registries has done;
	// nil on a node that does not sync (Config.DHT.Sync off).
	Sync *SyncStatus
}

// SyncStatus is a registry's sync with the others: peers, last
// reconciliation, records fetched and forwarded.
type SyncStatus = dht.SyncStatus

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	return Status{
		ID:            n.host.ID(),
		Network:       n.cfg.Network,
		Addrs:         n.Addrs(),
		Started:       n.started,
		RoutingTable:  n.dht.RoutingTableSize(),
		Registries:    n.Registries(),
		Services:      n.Services(),
		StoredRecords: n.dht.StoredRecords(),
		BridgeURL:     n.BridgeURL(),
		Reachability:  n.reachability(),
		Sync:          n.syncStatus(),
	}
}

// syncStatus is the DHT node's sync status, or nil when it does not sync.
func (n *Node) syncStatus() *SyncStatus {
	if n.cfg.DHT.Sync.Interval <= 0 {
		return nil
	}
	st := n.dht.SyncStatus()
	return &st
}
