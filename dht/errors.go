package dht

import "errors"

var (
	// ErrBadConfig is returned by New when the Config fails validation.
	ErrBadConfig = errors.New("invalid dht config")
	// ErrNotReady is returned when the node has no peer in its routing table
	// before the operation's deadline: it never joined the network.
	ErrNotReady = errors.New("not connected to the network: routing table is empty")
	// ErrClosed is returned by operations on a closed Node.
	ErrClosed = errors.New("dht node closed")
	// ErrStoreFull is returned when a node's record index is at its bounds
	// (MaxRecordsPerService, MaxStoredRecords).
	ErrStoreFull = errors.New("record store full")
	// ErrBadMessage is returned when a registry-protocol message cannot be
	// decoded or breaks the protocol's limits.
	ErrBadMessage = errors.New("bad registry protocol message")
	// ErrNotPublished is returned by Publish (and so Provide) when no
	// registry and no peer of the DHT walk took the record: nobody can find
	// it.
	ErrNotPublished = errors.New("no registry or peer took the record")
	// ErrDatastore is returned by OpenDatastore when the directory cannot be
	// opened as a datastore: not a directory, corrupt, or unreadable.
	ErrDatastore = errors.New("cannot open datastore")
)
