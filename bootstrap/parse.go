package bootstrap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ParseAddrs parses bootstrap multiaddrs from flag values and an environment
// value (see EnvVar), each of which may hold several comma-separated
// addresses; spaces around them and empty entries are ignored. Every address
// must end in /p2p/<peer ID> after some address to dial, except /dnsaddr
// ones, whose TXT records name the peers. A bad address fails the whole
// call with an error wrapping ErrBadAddr that names it. Duplicates are
// dropped and order is kept: flags first, then env.
func ParseAddrs(flags []string, env string) ([]ma.Multiaddr, error) {
	var out []ma.Multiaddr
	seen := make(map[string]bool)
	add := func(v, from string) error {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			m, err := parseAddr(s)
			if err != nil {
				return fmt.Errorf("%w: %q%s: %w", ErrBadAddr, s, from, err)
			}
			if k := string(m.Bytes()); !seen[k] {
				seen[k] = true
				out = append(out, m)
			}
		}
		return nil
	}
	for _, f := range flags {
		if err := add(f, ""); err != nil {
			return nil, err
		}
	}
	if err := add(env, " (from "+EnvVar+")"); err != nil {
		return nil, err
	}
	return out, nil
}

// parseAddr parses one bootstrap address.
func parseAddr(s string) (ma.Multiaddr, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, err
	}
	if len(m) > 0 && m[0].Code() == ma.P_DNSADDR {
		return m, nil
	}
	return m, checkPeerAddr(m)
}

// checkPeerAddr checks that m is an address followed by /p2p/<peer ID>.
func checkPeerAddr(m ma.Multiaddr) error {
	if len(m) == 0 || m[len(m)-1].Code() != ma.P_P2P {
		return errors.New("must end in /p2p/<peer ID>")
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return err
	}
	if len(ai.Addrs) == 0 {
		return errors.New("no address before /p2p/<peer ID>")
	}
	return nil
}
