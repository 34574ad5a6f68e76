package store

import "errors"

var (
	// ErrStoreFull is returned when the store is at its bounds
	// (Limits.PerService, Limits.Bytes) and holds no record it may evict
	// to make room.
	ErrStoreFull = errors.New("record store full")
	// ErrKeyQuota is returned when one signing key already has
	// Limits.PerKey records in the store.
	ErrKeyQuota = errors.New("too many records for one signing key")
	// ErrSourceQuota is returned when the store already holds
	// Limits.PerSource records delivered from the same address prefix.
	ErrSourceQuota = errors.New("too many records from one source address prefix")
	// ErrDatastore is returned by Open when the directory cannot be
	// opened as a datastore: not a directory, corrupt, or unreadable.
	ErrDatastore = errors.New("cannot open datastore")
	// ErrBadDatastoreOptions is returned by Options.Validate (and
	// OpenWith) for options no datastore can use.
	ErrBadDatastoreOptions = errors.New("bad datastore options")
	// ErrBadLimits is returned by Limits.Validate for limits no store can
	// keep.
	ErrBadLimits = errors.New("bad store limits")
)
