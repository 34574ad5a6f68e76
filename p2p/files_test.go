package p2p_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/p2p"
)

// otherUID is a uid that is neither root nor the test's user.
const otherUID = 65534

// chownOther gives path to otherUID: "owned by another local user". Only
// root may; CI runs the tests as root.
func chownOther(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, otherUID, otherUID); err != nil {
		t.Fatalf("chown %s to uid %d (the tests run as root): %v", path, otherUID, err)
	}
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

func mkdir(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestIdentityTrustsNoOne: a key file another user could read, write,
// swap or point elsewhere is refused with the fix in the message, and a
// symlink - dangling, looping or to a good key - is never followed.
func TestIdentityTrustsNoOne(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	if _, err := p2p.LoadOrCreateIdentity(good); err != nil {
		t.Fatal(err)
	}
	keyBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	key := func(name string, mode os.FileMode) string {
		return writeFile(t, filepath.Join(dir, name), keyBytes, mode)
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	foreign := key("foreign.key", 0o600)
	chownOther(t, foreign)
	fifo := filepath.Join(dir, "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	looseDir := mkdir(t, filepath.Join(dir, "loose"), 0o770)
	foreignDir := mkdir(t, filepath.Join(dir, "foreign"), 0o700)
	chownOther(t, foreignDir)
	tests := []struct {
		name, path string
		want       error
		fix        string // part of the message that says what to do
	}{
		{"group readable", key("g.key", 0o640), p2p.ErrPermissions, "chmod 600"},
		{"others writable", key("o.key", 0o602), p2p.ErrPermissions, "chmod 600"},
		{"another user's", foreign, p2p.ErrNotOwner, "chown"},
		{"symlink to a good key", link("link.key", good), p2p.ErrSymlink, "rm "},
		{"dangling symlink", link("dangling.key", filepath.Join(dir, "nowhere")), p2p.ErrSymlink, "rm "},
		{"symlink loop", link("loop.key", filepath.Join(dir, "loop.key")), p2p.ErrSymlink, "rm "},
		{"fifo", fifo, p2p.ErrNotRegular, "named pipe"},
		{"too large", writeFile(t, filepath.Join(dir, "huge.key2"), make([]byte, 17<<10), 0o600), p2p.ErrFileTooLarge, "bytes"},
		{"group-writable directory", filepath.Join(looseDir, "identity.key"), p2p.ErrPermissions, "chmod 750"},
		{"another user's directory", filepath.Join(foreignDir, "identity.key"), p2p.ErrNotOwner, "chown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := p2p.LoadOrCreateIdentity(tt.path)
			if !errors.Is(err, tt.want) || k != nil {
				t.Fatalf("got key %v, err %v; want %v", k, err, tt.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.fix) || strings.Count(msg, "\n") != 0 {
				t.Fatalf("error %q: want one line with %q", msg, tt.fix)
			}
		})
	}
	// Nothing was created through a link or in a refused directory.
	for _, p := range []string{filepath.Join(dir, "nowhere"), filepath.Join(looseDir, "identity.key"), filepath.Join(foreignDir, "identity.key")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: got %v, want nothing created", p, err)
		}
	}
}

// TestIdentityConcurrentCreate: processes racing to create a key all end
// up with the one that won.
func TestIdentityConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	const n = 16
	ids := make([]peer.ID, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := p2p.LoadOrCreateIdentity(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], _ = peer.IDFromPrivateKey(k)
		}()
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("racer %d got %s, racer 0 %s", i, ids[i], ids[0])
		}
	}
}

func TestCheckDir(t *testing.T) {
	base := t.TempDir()
	foreign := mkdir(t, filepath.Join(base, "foreign"), 0o700)
	chownOther(t, foreign)
	tests := []struct {
		name, path string
		want       error
		fix        string
	}{
		{"private", mkdir(t, filepath.Join(base, "private"), 0o700), nil, ""},
		{"world readable", mkdir(t, filepath.Join(base, "readable"), 0o755), nil, ""},
		{"group writable", mkdir(t, filepath.Join(base, "gw"), 0o770), p2p.ErrPermissions, "chmod 750"},
		{"world writable", mkdir(t, filepath.Join(base, "ow"), 0o757), p2p.ErrPermissions, "chmod 755"},
		{"sticky and world writable", mkdir(t, filepath.Join(base, "tmp"), 0o777|os.ModeSticky), p2p.ErrPermissions, "chmod 755"},
		{"another user's", foreign, p2p.ErrNotOwner, "chown"},
		{"missing", filepath.Join(base, "missing"), os.ErrNotExist, "missing"},
		{"a file", writeFile(t, filepath.Join(base, "file"), nil, 0o600), syscall.ENOTDIR, "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p2p.CheckDir(tt.path)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.fix) {
				t.Fatalf("error %q: want %q in it", err, tt.fix)
			}
		})
	}
}

const testPSK = "/key/swarm/psk/1.0.0/\n/base16/\n" +
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"

// TestPrivateNetwork: a pre-shared key file is checked like an identity
// key, and only hosts holding the same key connect.
func TestPrivateNetwork(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "swarm.key"), []byte(testPSK), 0o600)
	for name, tt := range map[string]struct {
		path string
		want error
	}{
		"readable by others": {writeFile(t, filepath.Join(dir, "open.key"), []byte(testPSK), 0o644), p2p.ErrPermissions},
		"not a swarm key":    {writeFile(t, filepath.Join(dir, "bad.key"), []byte("/key/swarm/psk/1.0.0/\n/base16/\nzz\n"), 0o600), p2p.ErrBadPSKFile},
		"missing":            {filepath.Join(dir, "none.key"), os.ErrNotExist},
	} {
		if _, err := p2p.LoadPSK(tt.path); !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: got %v, want %v naming %s", name, err, tt.want, tt.path)
		}
	}
	psk, err := p2p.LoadPSK(good)
	if err != nil || len(psk) != 32 {
		t.Fatalf("LoadPSK: %d bytes, %v", len(psk), err)
	}
	newHost := func(psk []byte) *hostT {
		cfg := p2p.DefaultConfig() // QUIC among the listen addrs: dropped with a PSK
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		cfg.PrivateNetwork = psk
		h, err := p2p.NewHost(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return &hostT{h.ID(), h.Addrs(), h.Connect}
	}
	a, b, outsider := newHost(psk), newHost(psk), newHost(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.connect(ctx, peer.AddrInfo{ID: a.id, Addrs: a.addrs}); err != nil {
		t.Fatalf("same key: %v", err)
	}
	if err := outsider.connect(ctx, peer.AddrInfo{ID: a.id, Addrs: a.addrs}); err == nil {
		t.Fatal("a host without the key connected to the private network")
	}
}

type hostT struct {
	id      peer.ID
	addrs   []ma.Multiaddr
	connect func(context.Context, peer.AddrInfo) error
}

// TestWriteFileAtomic: the file is replaced whole, private, and no
// temporary file is left beside it.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, want := range []string{"first\n", "second, longer\n"} {
		if err := p2p.WriteFileAtomic(path, []byte(want)); err != nil {
			t.Fatalf("WriteFileAtomic: %v", err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("read back %q, %v; want %q", got, err, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the directory, want only %s", len(ents), path)
	}
}
