package netget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/bootstrap"
	"github.com/netget/netget-peer/p2p"
)

// RegistriesFile is the file in a persistent node's data dir that keeps
// the registries added at run time, joined again at the next start
// together with Config.Bootstrap. Example:
//
//	{"version":1,"registries":["/ip4/10.0.0.7/tcp/4001/p2p/12D3KooW…"]}
const RegistriesFile = "registries.json"

const registriesVersion = 1

type registriesFile struct {
	Version    int      `json:"version"`
	Registries []string `json:"registries"`
}

// registries are the registries added at run time (AddRegistry) and, on a
// persistent node, the file that keeps them.
type registries struct {
	mu    sync.Mutex // serialises adds, removes and the file
	added []ma.Multiaddr
}

// RegistryStatus is one registry of a node.
type RegistryStatus struct {
	// Peer is the registry's peer ID.
	Peer peer.ID
	// Addrs are the addresses the node is connected to it on now.
	Addrs []ma.Multiaddr
	// Connected says whether the node is connected to it now; finds and
	// provides use it only then.
	Connected bool
}

// AddRegistry connects to the registry at addr (a full multiaddr ending
// in /p2p/<peer ID>, of a peer that announces bootstrap.RegistryAgent, on
// the node's network), makes it one of the node's registries (finds ask it
// directly, provides push to it, its connection is protected from
// trimming), pushes the records of the services the node provides to it at
// once and, on a persistent node, keeps it for the next start. On error
// nothing is kept; after Close it returns ErrClosed.
func (n *Node) AddRegistry(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
	info, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w (want /ip4/…/tcp/…/p2p/<peer ID>)", ErrBadRegistry, addr, err)
	}
	if info.ID == n.host.ID() {
		return "", fmt.Errorf("%w: %s is this node", ErrBadRegistry, addr)
	}
	if n.svcs.closed() {
		return "", ErrClosed
	}
	r := &n.regs
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := bootstrap.Join(ctx, n.host, []ma.Multiaddr{addr}, n.cfg.joinConfig(n.log)); err != nil {
		return "", fmt.Errorf("add registry %s: %w", addr, err)
	}
	if !n.useRegistry(info.ID) {
		n.host.ConnManager().Unprotect(info.ID, bootstrap.ProtectTag)
		return "", fmt.Errorf("%w: %s does not announce itself as a registry (%s)", ErrBadRegistry, addr, bootstrap.RegistryAgent)
	}
	if !slices.ContainsFunc(r.added, addr.Equal) {
		added := append(slices.Clone(r.added), addr)
		if err := r.save(n, added); err != nil {
			n.dht.RemoveRegistry(info.ID)
			return "", err
		}
		r.added = added
	}
	if err := n.dht.PushOwn(ctx, info.ID); err != nil {
		n.log.Warn("registry added, but it refused a record", "registry", info.ID, "err", err)
	}
	return info.ID, nil
}

// RemoveRegistry stops using registry p at once: finds no longer ask it,
// provides no longer push to it, its connection is no longer protected,
// and a persistent node forgets it (a bootstrap address given in Config
// is joined again at the next start). ErrUnknownRegistry if p is not one.
func (n *Node) RemoveRegistry(p peer.ID) error {
	r := &n.regs
	r.mu.Lock()
	defer r.mu.Unlock()
	if !n.dht.RemoveRegistry(p) {
		return fmt.Errorf("%w: %s", ErrUnknownRegistry, p)
	}
	n.host.ConnManager().Unprotect(p, bootstrap.ProtectTag)
	kept := slices.DeleteFunc(slices.Clone(r.added), func(a ma.Multiaddr) bool {
		info, err := peer.AddrInfoFromP2pAddr(a)
		return err == nil && info.ID == p
	})
	if len(kept) != len(r.added) {
		if err := r.save(n, kept); err != nil {
			return err
		}
		r.added = kept
	}
	return nil
}

// Registries returns the node's registries, connected or not, in no
// particular order.
func (n *Node) Registries() []RegistryStatus {
	ids := n.dht.KnownRegistries()
	out := make([]RegistryStatus, 0, len(ids))
	for _, p := range ids {
		reg := RegistryStatus{Peer: p, Connected: n.host.Network().Connectedness(p) == network.Connected}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			reg.Addrs = append(reg.Addrs, c.RemoteMultiaddr())
		}
		out = append(out, reg)
	}
	return out
}

// path is the registries file, or "" on a node that keeps nothing.
func (r *registries) path(n *Node) string {
	if !n.cfg.Persist {
		return ""
	}
	return filepath.Join(n.cfg.DataDir, RegistriesFile)
}

// load reads the registries an earlier run added; none without the file.
func (r *registries) load(n *Node) ([]ma.Multiaddr, error) {
	path := r.path(n)
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRegistriesFile, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f registriesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRegistriesFile, path, err)
	}
	if f.Version != registriesVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrRegistriesFile, path, f.Version, registriesVersion)
	}
	for _, s := range f.Registries {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %q: %w", ErrRegistriesFile, path, s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return nil, fmt.Errorf("%w: %s: %q: %w", ErrRegistriesFile, path, s, err)
		}
		r.added = append(r.added, a)
	}
	return slices.Clone(r.added), nil
}

// save writes addrs as the registries file, atomically (0600).
func (r *registries) save(n *Node, addrs []ma.Multiaddr) error {
	path := r.path(n)
	if path == "" {
		return nil
	}
	f := registriesFile{Version: registriesVersion, Registries: make([]string, len(addrs))}
	for i, a := range addrs {
		f.Registries[i] = a.String()
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return p2p.WriteFileAtomic(path, append(b, '\n'))
}
