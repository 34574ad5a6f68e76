package p2p

import "errors"

var (
	// ErrPermissions is returned when a local file netget trusts grants
	// too much to group or others: a key (identity, pre-shared) they may
	// read or write, or a directory, socket or service list they may
	// write.
	ErrPermissions = errors.New("permissions too open")
	// ErrNotOwner is returned when a local file or directory netget trusts
	// belongs to neither the current user nor root.
	ErrNotOwner = errors.New("not owned by the current user")
	// ErrSymlink is returned when a key file is a symbolic link, which is
	// never followed.
	ErrSymlink = errors.New("refusing to follow a symbolic link")
	// ErrNotRegular is returned when a file netget reads is a directory,
	// FIFO, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrFileTooLarge is returned when a local file is larger than its
	// kind ever is.
	ErrFileTooLarge = errors.New("file too large")
	// ErrIdentityRace is returned when an identity key file keeps
	// appearing and vanishing while it is being created.
	ErrIdentityRace = errors.New("identity key file changed while being created")
	// ErrBadKeyFile is returned when an identity key file cannot be decoded.
	ErrBadKeyFile = errors.New("identity key file is not a libp2p private key")
	// ErrBadPSKFile is returned when a pre-shared key file is not in the
	// go-libp2p pnet format (/key/swarm/psk/1.0.0/, /base16/, 64 hex digits).
	ErrBadPSKFile = errors.New("pre-shared key file is not a libp2p swarm key")
	// ErrBadConfig is returned when a Config fails validation.
	ErrBadConfig = errors.New("invalid host config")
)
