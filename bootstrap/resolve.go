package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
)

const (
	// maxDNSDepth is how many DNS components, /dnsaddr chains included, one
	// address may go through (libp2p's swarm allows the same).
	maxDNSDepth = 4
	// maxResolved caps the addresses one bootstrap address resolves to.
	maxResolved = 100
)

// Resolve turns bootstrap addresses into peers, resolving /dns, /dns4, /dns6
// and /dnsaddr names with r (nil: a new resolver using the system's DNS)
// and passing other addresses through. Addresses are grouped by peer ID,
// peers in first-seen order. Names are resolved concurrently. What resolves
// is returned even when some names do not; those failures are joined into
// the error, each wrapping ErrResolve and naming its address (an address
// that resolves to one without a peer ID wraps ErrBadAddr instead).
func Resolve(ctx context.Context, r *madns.Resolver, addrs []ma.Multiaddr) ([]peer.AddrInfo, error) {
	if r == nil {
		var err error
		if r, err = madns.NewResolver(); err != nil {
			return nil, fmt.Errorf("dns resolver: %w", err)
		}
	}
	peers, errs := resolve(ctx, r, addrs)
	return peers, errors.Join(errs...)
}

// resolve is Resolve with the errors unjoined, so Join can log each.
func resolve(ctx context.Context, r *madns.Resolver, addrs []ma.Multiaddr) ([]peer.AddrInfo, []error) {
	results := make([][]ma.Multiaddr, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { results[i], errs[i] = resolveAddr(ctx, r, a, a, 0) })
	}
	wg.Wait()
	var infos []peer.AddrInfo
	for i, rs := range results {
		for _, m := range rs {
			ai, err := peer.AddrInfoFromP2pAddr(m)
			if err == nil && len(ai.Addrs) == 0 {
				err = errors.New("no address before /p2p/<peer ID>")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s%s: %w", ErrBadAddr, m, via(m, addrs[i]), err))
				continue
			}
			infos = append(infos, *ai)
		}
	}
	return mergeByPeer(infos), nonNil(errs)
}

// resolveAddr resolves a, which came from orig, until no DNS component is
// left. It returns what resolved and an error for what did not.
func resolveAddr(ctx context.Context, r *madns.Resolver, a, orig ma.Multiaddr, depth int) ([]ma.Multiaddr, error) {
	if !madns.Matches(a) {
		return []ma.Multiaddr{a}, nil
	}
	if depth == maxDNSDepth {
		return nil, fmt.Errorf("%w: %s%s: more than %d DNS lookups", ErrResolve, a, via(a, orig), maxDNSDepth)
	}
	rs, err := r.Resolve(ctx, a)
	if err == nil && len(rs) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s%s: %w", ErrResolve, a, via(a, orig), err)
	}
	var out []ma.Multiaddr
	var errs []error
	for _, m := range rs {
		got, err := resolveAddr(ctx, r, m, orig, depth+1)
		out = append(out, got...)
		if err != nil {
			errs = append(errs, err)
		}
		if len(out) >= maxResolved {
			out = out[:maxResolved]
			break
		}
	}
	return out, errors.Join(errs...)
}

// via names orig when m came from it.
func via(m, orig ma.Multiaddr) string {
	if m.Equal(orig) {
		return ""
	}
	return " (from " + orig.String() + ")"
}

// mergeByPeer groups addresses by peer, keeping first-seen order and
// dropping duplicate addresses.
func mergeByPeer(infos []peer.AddrInfo) []peer.AddrInfo {
	idx := make(map[peer.ID]int)
	var out []peer.AddrInfo
	for _, ai := range infos {
		i, ok := idx[ai.ID]
		if !ok {
			i = len(out)
			idx[ai.ID] = i
			out = append(out, peer.AddrInfo{ID: ai.ID})
		}
		for _, a := range ai.Addrs {
			if !slices.ContainsFunc(out[i].Addrs, a.Equal) {
				out[i].Addrs = append(out[i].Addrs, a)
			}
		}
	}
	return out
}

// nonNil drops nil errors.
func nonNil(errs []error) []error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}
