// Package p2p builds netget's libp2p host: the persistent Ed25519 identity,
// transports (TCP and QUIC), security (Noise and TLS), connection-manager and
// resource-manager limits. It is the only package that calls libp2p.New.
//
// Identity: NewHost loads the key at Config.IdentityPath, creating it (mode
// 0600, parent directory 0700) on first run. An empty IdentityPath gives an
// ephemeral key, which short-lived clients such as `find` use.
//
// Local files trust no one, like ssh's StrictModes. Every file or
// directory netget acts upon is checked by one rule (checkInfo): it must be
// owned by the current user or root (else ErrNotOwner) and grant group and
// others no write access, nor read access for secrets (else
// ErrPermissions); the error names the chmod or chown that fixes it.
// CheckDir applies it to a directory (the data dir, a key's directory),
// CheckSocket to the control socket, ReadPrivateFile to the identity key and
// the pre-shared key (LoadPSK), ReadTrustedFile to other files a node acts
// upon (services.json). Files are opened with O_NOFOLLOW: a symlink,
// dangling or not, is refused (ErrSymlink), never followed, and a FIFO
// never blocks the open. Each read is bounded in bytes (ErrFileTooLarge).
// A new key appears whole or not at all (written beside the path, then
// hard-linked into place, which never replaces anything); reading back a
// key another process created first is retried a bounded number of times
// (ErrIdentityRace), and a dangling symlink is an error, no longer a loop.
//
// Private networks: Config.PrivateNetwork (read with LoadPSK from a
// go-libp2p swarm key file) limits the host to peers holding the same key;
// anyone else fails the connection handshake.
//
// No discovery runs here: mDNS and other multicast discovery are never
// enabled, and no NAT port mapping is attempted unless asked for, so hosts in
// tests and devnets stay on the addresses they were given.
//
// NAT traversal (nat.go), all go-libp2p's own, configured in one place
// (natOptions):
//   - Reachability: Config.Reachability forces public or private, or
//     leaves it to AutoNAT v1 (auto), which asks peers offering the
//     AutoNAT service to dial it back. Status reports what the host
//     believes and its relay addresses.
//   - Relay service: Config.RelayService serves circuit relay v2 within
//     its limits (slots in all, per IP, per ASN; circuits per peer; slot
//     TTL; each circuit's duration and bytes, after which the relay resets
//     it). go-libp2p runs it while the host believes itself public, so the
//     Registry preset forces public. A peer holds one slot at most.
//   - AutoNAT service: Config.AutoNATService answers dial-back requests,
//     rate-limited in all and per peer; it dials only the address the
//     request came from.
//   - AutoRelay: a host that is not public and has Config.Relays reserves
//     a slot on up to two of them (go-libp2p's default) and, once AutoNAT
//     or the operator says it is private, advertises
//     <relay addr>/p2p/<relay>/p2p-circuit instead of its public
//     addresses (it keeps its private ones). Only relays' public addresses
//     make circuit addresses (go-libp2p drops the others), so on a LAN or
//     loopback a host reserves but advertises no relay address. Choices:
//     one candidate suffices (no boot delay), the source is asked again at
//     most every 10s, and a relay that refused is left alone a minute.
//   - The relay transport is on for every host, even one listening
//     nowhere (a find's), so any host dials circuit addresses; a v2 relay
//     connects only peers holding a slot, so this makes no listener
//     reachable.
//   - Hole punching (DCUtR, Config.HolePunching) is on for hosts that
//     listen. go-libp2p punches only from a host that knows a public
//     address of its own: behind NAT, its observed address must be
//     confirmed by several peers (identify), so in a network of one or two
//     registries the connection stays relayed.
//   - Relayed connections are limited: go-libp2p opens streams on them
//     only for protocols that ask (network.WithAllowLimitedConn). netget's
//     registry protocol, libp2p ping (health checks, Node.Ping) and
//     identify do; kad-dht does not, so a private host should be a DHT
//     client.
package p2p
