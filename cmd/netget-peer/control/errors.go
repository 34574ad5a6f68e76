package control

import "errors"

var (
	// ErrNoDaemon is returned by the Client when no daemon answers on the
	// data dir's socket: the socket is absent, stale (left by a daemon that
	// was killed), or its path cannot be a socket.
	ErrNoDaemon = errors.New("no daemon running")
	// ErrUntrustedSocket is returned by the Client when the control socket,
	// or the process serving it, belongs to neither the current user nor
	// root (or its mode lets others write it): nothing is sent to it and
	// nothing it says is believed.
	ErrUntrustedSocket = errors.New("control socket not trusted")
	// ErrSocketPath is returned by Listen when the socket path is too long
	// for a Unix socket.
	ErrSocketPath = errors.New("control socket path too long")
	// ErrSocketInUse is returned by Listen when a live server already
	// answers on the socket.
	ErrSocketInUse = errors.New("control socket in use")
	// ErrServicesFile is returned by NewServer when services.json cannot be
	// read, holds something other than a valid service set, or is not
	// trusted: a symlink, another user's, or writable by group or others
	// (then it also wraps p2p's ErrNotOwner, ErrPermissions or ErrSymlink).
	ErrServicesFile = errors.New("invalid services file")
	// ErrBadConfig is returned by NewServer when the Config fails validation.
	ErrBadConfig = errors.New("invalid control config")
	// ErrClosed is returned by Serve when it was already called. Requests
	// that arrive while the server shuts down get 503 CodeUnavailable.
	ErrClosed = errors.New("control server closed")
	// ErrStream is returned by Client.Find when the result stream breaks
	// off or carries something it should not.
	ErrStream = errors.New("bad find stream")
)
