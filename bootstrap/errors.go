package bootstrap

import (
	"errors"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

var (
	// ErrBadAddr is returned by ParseAddrs (and Resolve) for a bootstrap
	// address that is not a multiaddr ending in /p2p/<peer ID>, or a
	// /dnsaddr one, which resolves to such addresses. The error names the
	// address.
	ErrBadAddr = errors.New("invalid bootstrap address")
	// ErrResolve is returned by Resolve and Join when a /dns, /dns4, /dns6
	// or /dnsaddr name does not resolve to any address. The error names it.
	ErrResolve = errors.New("cannot resolve bootstrap address")
	// ErrNoPeers is returned by Connect and Join when they are given no
	// bootstrap peer to connect to (or only the node itself).
	ErrNoPeers = errors.New("no bootstrap peers")
	// ErrUnreachable is matched by errors.Is on an *UnreachableError, which
	// Connect and Join return when no bootstrap peer could be connected.
	ErrUnreachable = errors.New("no bootstrap peer reachable")
	// ErrWrongNetwork is matched by errors.Is on a *NetworkError: a
	// bootstrap peer that speaks another netget network than
	// Config.Network. Connect does not retry such a peer.
	ErrWrongNetwork = errors.New("bootstrap peer speaks another network")
	// ErrBadConfig is returned by Config.Validate, and so by Connect and
	// Join, for a config with a negative count or duration.
	ErrBadConfig = errors.New("invalid bootstrap config")
)

// PeerError says why one bootstrap peer could not be connected.
type PeerError struct {
	// ID is the peer.
	ID peer.ID
	// Addrs are the addresses that were dialled.
	Addrs []ma.Multiaddr
	// Err is the last attempt's error. Its message is a one-line reason
	// ("connection refused"); the libp2p error it came from is wrapped, for
	// errors.Is and errors.As.
	Err error
}

// Error reads "<peer ID> (<addr>, …): <reason>".
func (e PeerError) Error() string {
	addrs := make([]string, len(e.Addrs))
	for i, a := range e.Addrs {
		addrs[i] = a.String()
	}
	return e.ID.String() + " (" + strings.Join(addrs, ", ") + "): " + errString(e.Err)
}

// Unwrap returns Err.
func (e PeerError) Unwrap() error { return e.Err }

// UnreachableError is returned by Connect when no bootstrap peer could be
// connected. errors.Is(err, ErrUnreachable) is true for it, and errors.Is
// also sees each peer's error (context.DeadlineExceeded, for one).
type UnreachableError struct {
	// Peers lists every peer that was tried, in the order given.
	Peers []PeerError
}

// Error reads "no bootstrap peer reachable: <peer error>; <peer error>…".
func (e *UnreachableError) Error() string {
	if len(e.Peers) == 0 {
		return ErrUnreachable.Error()
	}
	parts := make([]string, len(e.Peers))
	for i, p := range e.Peers {
		parts[i] = p.Error()
	}
	return ErrUnreachable.Error() + ": " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrUnreachable.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Unwrap returns each peer's error.
func (e *UnreachableError) Unwrap() []error {
	errs := make([]error, len(e.Peers))
	for i, p := range e.Peers {
		errs[i] = p.Err
	}
	return errs
}

// errString is err's message, or "unknown error" for nil.
func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}
