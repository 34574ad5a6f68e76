package bootstrap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

var (
	// ErrBadAddr is returned for a bootstrap address that is not a multiaddr
	// ending in /p2p/<peer ID> (or a /dnsaddr, which resolves to those).
	ErrBadAddr = errors.New("invalid bootstrap address")
	// ErrResolve is returned when a /dns4, /dns6 or /dnsaddr name does not resolve.
	ErrResolve = errors.New("cannot resolve bootstrap address")
	// ErrNoPeers is returned when there is no bootstrap peer to connect to.
	ErrNoPeers = errors.New("no bootstrap peers")
	// ErrUnreachable is matched (errors.Is) by UnreachableError: no
	// bootstrap peer could be connected.
	ErrUnreachable = errors.New("no bootstrap peer reachable")
)

// PeerError is why one bootstrap peer could not be connected.
type PeerError struct {
	ID    peer.ID
	Addrs []ma.Multiaddr
	Err   error
}

// UnreachableError is returned by Connect when no bootstrap peer connected.
// It names every peer and its last error.
type UnreachableError struct {
	Peers []PeerError
}

func (e *UnreachableError) Error() string {
	parts := make([]string, len(e.Peers))
	for i, p := range e.Peers {
		addrs := make([]string, len(p.Addrs))
		for j, a := range p.Addrs {
			addrs[j] = a.String()
		}
		parts[i] = fmt.Sprintf("%s (%s): %v", p.ID, strings.Join(addrs, ", "), p.Err)
	}
	return ErrUnreachable.Error() + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }
