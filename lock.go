package netget

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/netget/netget-peer/p2p"
)

// CheckDataDir refuses a data dir that another local user could change
// (p2p.CheckDir: owned by neither this user nor root, or writable by group
// or others), as ssh's StrictModes refuses ~/.ssh: whoever can write there
// can plant a services or registries file acted upon under this node's
// key, or a fake control socket. With create, a missing dir is made 0700
// first; without, a missing dir is no error (nothing there to trust). New
// calls it on every data dir it locks; a client of a daemon calls it
// before trusting the daemon's socket.
func CheckDataDir(dir string, create bool) error {
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("data dir %s: %w", dir, err)
		}
	}
	err := p2p.CheckDir(dir)
	switch {
	case err == nil, !create && errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, p2p.ErrNotOwner), errors.Is(err, p2p.ErrPermissions):
		return fmt.Errorf("data dir %s is not safe: %w", dir, err)
	}
	return fmt.Errorf("data dir %s: %w", dir, err)
}

// lockDataDir creates dir (0700) if need be, checks that no other user
// can change it (CheckDataDir), and takes an exclusive lock on dir/lock,
// so two nodes never share an identity, a datastore, a socket or a
// services file. The lock goes with the process, however it ends.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := CheckDataDir(dir, true); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s: another netget-peer is %w with it (it holds %s); stop it, or pass another --data-dir",
				dir, ErrAlreadyRunning, path)
		}
		return nil, fmt.Errorf("data dir %s: lock %s: %w", dir, path, err)
	}
	return func() { f.Close() }, nil
}
