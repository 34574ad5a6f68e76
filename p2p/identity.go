package p2p

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/pnet"
)

// Bounds on the key files read from disk.
const (
	// maxKeyFile bounds an identity key file: an Ed25519 key is 68 bytes,
	// a 4096-bit RSA key about 2.4 KiB.
	maxKeyFile = 16 << 10
	// maxPSKFile bounds a pre-shared key file: 64 hex digits and two
	// header lines.
	maxPSKFile = 4 << 10
	// createAttempts bounds how often LoadOrCreateIdentity retries when
	// the key appears (another process created it) and then vanishes.
	createAttempts = 3
)

// LoadOrCreateIdentity returns the private key stored at path, creating an
// Ed25519 key there (mode 0600, its directory 0700) if the file does not
// exist. The key's directory must pass CheckDir, and the key itself must
// be a regular file — never a symlink (ErrSymlink) — owned by the current
// user or root that group and others can neither read nor write
// (ErrPermissions, ErrNotOwner), as ssh requires of its keys.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if err := CheckDir(dir); err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	for range createAttempts {
		b, err := ReadPrivateFile(path, maxKeyFile)
		if errors.Is(err, fs.ErrNotExist) {
			k, err := createIdentity(path)
			if errors.Is(err, fs.ErrExist) {
				continue // another process won the race: read its key
			}
			return k, err
		}
		if err != nil {
			return nil, fmt.Errorf("identity %w", err)
		}
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("identity %s: %w: %w", path, ErrBadKeyFile, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("identity %s: %w %d times; is another program replacing it?", path, ErrIdentityRace, createAttempts)
}

// createIdentity writes a new key to path. It returns an error wrapping
// fs.ErrExist if anything, even a dangling symlink, is already there. The
// key appears whole or not at all: it is written to a temp file beside
// path, synced, then hard-linked to path, which never replaces anything,
// so a process racing to read it never sees half a key.
func createIdentity(path string) (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal identity: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*") // 0600, O_EXCL
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, unwrapPath(err))
	}
	return k, nil
}

// LoadPSK reads a private network's pre-shared key from path, in go-libp2p's
// pnet format (the swarm.key of IPFS private networks):
//
//	/key/swarm/psk/1.0.0/
//	/base16/
//	<64 hex digits>
//
// The file is checked as an identity key is (ReadPrivateFile): a secret.
func LoadPSK(path string) (pnet.PSK, error) {
	b, err := ReadPrivateFile(path, maxPSKFile)
	if err != nil {
		return nil, fmt.Errorf("pre-shared key %w", err)
	}
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("pre-shared key %s: %w: %w", path, ErrBadPSKFile, err)
	}
	return psk, nil
}
