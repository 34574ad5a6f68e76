package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/netget/netget-peer/p2p"
)

// File names in the data dir.
const (
	// SocketName is the control socket's file name in the data dir.
	SocketName = "control.sock"
	// ServicesName is the provided-service set's file name in the data dir.
	ServicesName = "services.json"
)

// maxSocketPath is the longest path a Unix socket may have on Linux
// (sun_path is 108 bytes, NUL included).
const maxSocketPath = 107

// SocketPath returns the control socket's path in dataDir.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Listen creates the control socket in dataDir, mode 0600, and listens on
// it. The caller must hold the data dir (the daemon's lock), which proves a
// socket already there is stale: Listen replaces it, unless something still
// answers on it (ErrSocketInUse). The socket is never reachable with looser
// permissions, whatever the umask or the data dir's mode: it is bound in a
// fresh 0700 directory, chmodded, then renamed into place. Closing the
// listener removes the socket.
func Listen(dataDir string) (net.Listener, error) {
	path := SocketPath(dataDir)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d; use a shorter data dir",
			ErrSocketPath, path, len(path), maxSocketPath)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s answers; another daemon serves this data dir", ErrSocketInUse, path)
	}
	tmp, err := os.MkdirTemp(dataDir, ".ctl")
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	bind := filepath.Join(tmp, "s")
	if len(bind) > maxSocketPath {
		return nil, fmt.Errorf("%w: %s is %d bytes, and binding it takes %d, at most %d; use a shorter data dir",
			ErrSocketPath, path, len(path), len(bind), maxSocketPath)
	}
	ln, err := net.Listen("unix", bind)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	err = os.Chmod(bind, 0o600)
	if err == nil {
		err = os.Rename(bind, path)
	}
	if err != nil {
		ul.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: ul, path: path}, nil
}

// socketListener removes its socket file when closed.
type socketListener struct {
	*net.UnixListener
	path string
	once sync.Once
	err  error
}

// Close stops listening and removes the socket. It is idempotent.
func (l *socketListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) && l.err == nil {
			l.err = fmt.Errorf("remove control socket: %w", err)
		}
	})
	return l.err
}

// Accept returns the next connection from a process of the current user
// or root. Others cannot reach a 0600 socket; should its mode be loosened,
// their connections are closed unanswered (their uid comes from the kernel).
func (l *socketListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if uid, err := peerUID(c); err == nil && p2p.TrustedUID(uid) {
			return c, nil
		}
		c.Close()
	}
}

// noDaemon reports whether a dial error means nobody serves the socket:
// it is absent, stale (refused), or not a socket at all. A socket that is
// there but untrusted is not "no daemon": it is refused loudly.
func noDaemon(err error) bool {
	if errors.Is(err, ErrUntrustedSocket) {
		return false
	}
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ENOTSOCK) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EINVAL)
}
