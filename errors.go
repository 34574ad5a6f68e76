package netget

import (
	"errors"

	"github.com/netget/netget-peer/dht"
)

var (
	// ErrBadConfig is returned by New when the Config fails validation.
	ErrBadConfig = errors.New("invalid node config")
	// ErrClosed is returned by operations on a closed Node.
	ErrClosed = errors.New("node closed")
	// ErrAlreadyRunning is returned by New when another process holds the
	// data dir's lock.
	ErrAlreadyRunning = errors.New("already running")
	// ErrNotProvided is returned by Unprovide for a service the node does
	// not provide in this run (it still publishes the withdrawal).
	ErrNotProvided = errors.New("service not provided by this node")
	// ErrFindTimeout is returned, wrapped, by Find when its timeout ended
	// the search; what it found in time was handed over already.
	ErrFindTimeout = dht.ErrFindTimeout
	// ErrBadRegistry is returned by AddRegistry for an address that does
	// not name a peer (/p2p/<id>) or names this node.
	ErrBadRegistry = errors.New("bad registry address")
	// ErrRegistriesFile is returned by New when the data dir's
	// registries.json cannot be read or is invalid.
	ErrRegistriesFile = errors.New("bad registries file")
	// ErrUnknownRegistry is returned by RemoveRegistry for a peer that is
	// not one of the node's registries.
	ErrUnknownRegistry = errors.New("not a registry of this node")
	// ErrNoChannels is returned by Dial for a record that does not say
	// its provider takes channels (record.MetaChannel), and by Connect
	// when no provider found takes them (or matches its options).
	ErrNoChannels = errors.New("no provider taking channels")
	// ErrNoHandler is returned by Provide for a Spec whose metadata sets
	// record.MetaChannel while no Handle serves the service.
	ErrNoHandler = errors.New("no channel handler for the service")
)
