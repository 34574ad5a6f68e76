package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// LoadOrCreateIdentity returns the private key stored at path, creating an
// Ed25519 key there (mode 0600) if the file does not exist. It refuses a key
// file whose mode lets group or others read or write it.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createIdentity(path)
	case err != nil:
		return nil, fmt.Errorf("identity %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("identity %s: %w: not a regular file", path, ErrBadKeyFile)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("identity %s: %w: mode %04o, want 0600 (chmod 600 %s)",
			path, ErrKeyPermissions, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w: %w", path, ErrBadKeyFile, err)
	}
	return k, nil
}

func createIdentity(path string) (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal identity: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	// O_EXCL: two processes racing to create the key must not both win.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateIdentity(path)
	}
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return k, nil
}
