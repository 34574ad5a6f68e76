package p2p

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Who besides a file's owner may touch it. Every local file netget trusts
// is checked against one of these, by checkInfo, like ssh's StrictModes.
const (
	// denySecret: group and others may neither read nor write (keys).
	denySecret fs.FileMode = 0o077
	// denyShared: group and others may not write (directories, sockets,
	// services.json).
	denyShared fs.FileMode = 0o022
)

// CheckDir returns nil if dir is a directory that only the current user
// (or root) can change: owned by them, not writable by group or others.
// It follows a symlink to the directory, as ssh does for ~/.ssh. The error
// wraps ErrNotOwner, ErrPermissions or the fs error, and names the fix.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("directory %s: %w", dir, syscall.ENOTDIR)
	}
	return checkInfo("directory", dir, fi, denyShared)
}

// CheckSocket returns nil if fi (from os.Lstat of path) describes a Unix
// socket that only the current user (or root) owns and that group and
// others cannot write to.
func CheckSocket(path string, fi fs.FileInfo) error {
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("socket %s: %w", path, syscall.ENOTSOCK)
	}
	return checkInfo("socket", path, fi, denyShared)
}

// ReadPrivateFile reads a secret (an identity key, a pre-shared key) of at
// most max bytes from path: a regular file owned by the current user (or
// root) that group and others can neither read nor write. It never follows
// a symlink (ErrSymlink) and never blocks on a FIFO.
func ReadPrivateFile(path string, max int64) ([]byte, error) {
	return readChecked(path, max, denySecret)
}

// ReadTrustedFile reads a file of at most max bytes that is not secret but
// is acted upon (a service list): like ReadPrivateFile, except that group
// and others may read it.
func ReadTrustedFile(path string, max int64) ([]byte, error) {
	return readChecked(path, max, denyShared)
}

func readChecked(path string, max int64, deny fs.FileMode) ([]byte, error) {
	// O_NOFOLLOW: a symlink fails with ELOOP, dangling or not. O_NONBLOCK:
	// opening a planted FIFO returns at once; Fstat then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s: %w; point at the file itself, or remove the link (rm %s)", path, ErrSymlink, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: it is a %s", path, ErrNotRegular, kind(fi.Mode()))
	}
	if err := checkInfo("file", path, fi, deny); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrFileTooLarge, max)
	}
	return b, nil
}

// kind names a file type for people.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// unwrapPath drops an *fs.PathError's or *os.LinkError's op and paths,
// which the caller's message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// WriteFileAtomic writes b to path, mode 0600, through a temporary file in
// the same directory that is synced and then renamed over path, so a crash
// leaves the old contents or the new, never a mix; the rename is made
// durable with a sync of the directory (best effort).
func WriteFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// TrustedUID reports whether a file owner or a peer process with uid may
// be trusted: it is the current effective user, or root (who could act as
// that user anyway).
func TrustedUID(uid uint32) bool {
	return uid == 0 || int64(uid) == int64(os.Geteuid())
}

// checkInfo is the one ownership and mode rule: fi must belong to the
// current effective user or to root, and grant none of deny. what names
// the kind of path in the error, which says how to fix it.
func checkInfo(what, path string, fi fs.FileInfo, deny fs.FileMode) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s %s: %w: no owner information", what, path, ErrNotOwner)
	}
	me := os.Geteuid()
	if !TrustedUID(st.Uid) {
		return fmt.Errorf("%s %s: %w: owner uid %d, you are uid %d; if it is yours, chown %d %s, else use another path",
			what, path, ErrNotOwner, st.Uid, me, me, path)
	}
	if perm := fi.Mode().Perm(); perm&deny != 0 {
		want := perm &^ deny
		return fmt.Errorf("%s %s: %w: mode %04o, want %04o (chmod %o %s)",
			what, path, ErrPermissions, perm, want, want, path)
	}
	return nil
}
