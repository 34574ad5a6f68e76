package p2p

import "errors"

var (
	// ErrKeyPermissions is returned when an identity key file is readable or
	// writable by group or others.
	ErrKeyPermissions = errors.New("identity key file permissions too open")
	// ErrBadKeyFile is returned when an identity key file cannot be decoded.
	ErrBadKeyFile = errors.New("identity key file is not a libp2p private key")
	// ErrBadConfig is returned when a Config fails validation.
	ErrBadConfig = errors.New("invalid host config")
)
