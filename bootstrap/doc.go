// Package bootstrap owns joining a network: the bootstrap (registry) peer
// list from --bootstrap flags and $NETGET_BOOTSTRAP (ParseAddrs), resolving
// /dns, /dns4, /dns6 and /dnsaddr multiaddrs (Resolve), and connecting to
// the peers with retry and backoff (Connect). Join does the last two, as a
// node does at start.
//
// Choices made here:
//   - Every bootstrap address names its peer (/p2p/<peer ID>), except
//     /dnsaddr ones, whose TXT records name them. Unnamed addresses are
//     rejected rather than dialled blindly.
//   - Resolution is best effort: what resolves is returned beside an error
//     naming what did not (ErrResolve). /dnsaddr chains are followed a few
//     levels deep.
//   - Peers are dialled concurrently. Each gets Config.Attempts tries with
//     doubling backoff; a failed try is remembered by libp2p's dial backoff,
//     which Connect clears first so every try really dials. The node itself
//     is skipped, so one list can serve every registry.
//   - If no peer connects, the error is an *UnreachableError naming each peer,
//     its addresses and a one-line reason (such as "connection refused"). If
//     some connect, the others are logged as warnings and Connect succeeds.
//   - With Config.Network set, a peer whose identify protocols name
//     another netget network's DHT (/netget/<other>/kad/1.0.0) and not this
//     one's fails at once with a *NetworkError (ErrWrongNetwork): "bootstrap
//     peer … speaks network devnet, not development", instead of a join
//     that succeeds and a DHT that never answers. It is not retried. When
//     every peer fails so, Connect returns those errors alone.
//   - Every connection it makes is protected in the host's connection
//     manager under ProtectTag, so trimming never drops a node's way into
//     the network.
//
// It receives a libp2p host and never builds one; it imports no other netget
// package.
package bootstrap
