package bootstrap

import (
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// NetworkError is returned, as a peer's error, when a bootstrap peer speaks
// another netget network than Config.Network. errors.Is(err,
// ErrWrongNetwork) is true for it.
type NetworkError struct {
	// ID is the peer.
	ID peer.ID
	// Speaks lists the networks the peer's DHT protocols name, sorted.
	Speaks []string
	// Want is Config.Network.
	Want string
}

// Error reads "bootstrap peer <ID> speaks network devnet, not development".
func (e *NetworkError) Error() string {
	return fmt.Sprintf("bootstrap peer %s speaks network %s, not %s", e.ID, strings.Join(e.Speaks, ", "), e.Want)
}

// Is reports whether target is ErrWrongNetwork.
func (e *NetworkError) Is(target error) bool { return target == ErrWrongNetwork }

// kadPrefix and kadSuffix frame the DHT protocol a netget node of network N
// serves in DHT server mode: /netget/N/kad/1.0.0.
const (
	kadPrefix = "/netget/"
	kadSuffix = "/kad/1.0.0"
)

// networksOf returns the netget networks whose DHT protocol protos lists,
// sorted.
func networksOf(protos []protocol.ID) []string {
	var out []string
	for _, p := range protos {
		s := string(p)
		if n, ok := strings.CutPrefix(s, kadPrefix); ok {
			if n, ok = strings.CutSuffix(n, kadSuffix); ok && n != "" && !strings.Contains(n, "/") {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkNetwork reports a *NetworkError when connected peer p advertises
// (in identify, which a libp2p Connect waits for) the DHT protocol of some
// netget network and not want's. A peer that advertises none, such as a
// DHT client, passes: nothing says it is on another network. An empty want
// checks nothing.
func checkNetwork(h host.Host, p peer.ID, want string) error {
	if want == "" {
		return nil
	}
	protos, err := h.Peerstore().GetProtocols(p)
	if err != nil {
		return nil
	}
	speaks := networksOf(protos)
	if len(speaks) == 0 || slices.Contains(speaks, want) {
		return nil
	}
	return &NetworkError{ID: p, Speaks: speaks, Want: want}
}

// RegistryAgent is the identify agent version a netget registry announces
// (p2p.Config.UserAgent). Registries answer the registry fast path for
// every service; a bootstrap peer that does not announce it is an ordinary
// node, to be asked as a DHT peer, not as a registry.
const RegistryAgent = "netget-peer/registry"

// IsRegistry reports whether connected peer p announced RegistryAgent in
// identify (a libp2p Connect waits for identify, so after Connect or Join
// it is known).
func IsRegistry(h host.Host, p peer.ID) bool {
	v, err := h.Peerstore().Get(p, "AgentVersion")
	s, _ := v.(string)
	return err == nil && s == RegistryAgent
}
