package dht

import (
	"errors"

	"github.com/netget/netget-peer/dht/store"
)

var (
	// ErrBadConfig is returned by New when the Config fails validation.
	ErrBadConfig = errors.New("invalid dht config")
	// ErrNotReady is returned when the node has no peer in its routing table
	// before the operation's deadline: it never joined the network.
	ErrNotReady = errors.New("not connected to the network: routing table is empty")
	// ErrFindTimeout is returned by Find when its timeout passed before
	// the search completed; the results found in time were yielded.
	ErrFindTimeout = errors.New("find timed out")
	// ErrClosed is returned by operations on a closed Node.
	ErrClosed = errors.New("dht node closed")
	// ErrStoreFull is returned when a node's record store is at its bounds
	// (StoreLimits.PerService, StoreLimits.Bytes) and holds no record it
	// may evict (store.ErrStoreFull).
	ErrStoreFull = store.ErrStoreFull
	// ErrKeyQuota is returned when one signing key already has
	// StoreLimits.PerKey records in the store (store.ErrKeyQuota).
	ErrKeyQuota = store.ErrKeyQuota
	// ErrBadDatastoreOptions is returned by OpenDatastoreWith for
	// DatastoreOptions no datastore can use
	// (store.ErrBadDatastoreOptions).
	ErrBadDatastoreOptions = store.ErrBadDatastoreOptions
	// ErrSourceQuota is returned when the store already holds
	// StoreLimits.PerSource records delivered from the same address prefix
	// (store.ErrSourceQuota).
	ErrSourceQuota = store.ErrSourceQuota
	// ErrNotPublished is returned by Publish (and so Provide) when no
	// registry and no peer of the DHT walk took the record: nobody can find
	// it.
	ErrNotPublished = errors.New("no registry or peer took the record")
	// ErrDatastore is returned by OpenDatastore when the directory cannot be
	// opened as a datastore: not a directory, corrupt, or unreadable
	// (store.ErrDatastore).
	ErrDatastore = store.ErrDatastore
	// ErrTooManyWatchers is returned (and sent to the watcher as the drop
	// reason) when a node already serves WatchLimits.Max watches.
	ErrTooManyWatchers = errors.New("too many watchers")
	// ErrWatcherQuota is returned (and sent to the watcher as the drop
	// reason) when one peer already holds WatchLimits.PerPeer watches.
	ErrWatcherQuota = errors.New("too many watches from this peer")
	// ErrPrivateAddrs is returned when a registry that only accepts public
	// provider addresses (AddrPolicy) is offered a record without one.
	ErrPrivateAddrs = errors.New("record has no public address")
)

// Provider-record refusals (see Config.ProviderRate, ProvidersPerPeer and
// MaxProviderRecords); each is a reason in netget_provider_records_total.
var (
	// ErrProviderRate is returned when a peer sends provider records faster
	// than Config.ProviderRate allows.
	ErrProviderRate = errors.New("provider records arriving too fast from this peer")
	// ErrProviderQuota is returned when a peer already holds
	// Config.ProvidersPerPeer provider records on this node.
	ErrProviderQuota = errors.New("provider record quota of this peer reached")
	// ErrProviderStoreFull is returned when the node holds
	// Config.MaxProviderRecords provider records and the sender already
	// holds as many as any other peer.
	ErrProviderStoreFull = errors.New("provider record store full")
)
