// Package p2p builds netget's libp2p host: the persistent Ed25519 identity,
// transports (TCP and QUIC), security (Noise and TLS), connection-manager and
// resource-manager limits. It is the only package that calls libp2p.New.
//
// Identity: NewHost loads the key at Config.IdentityPath, creating it (mode
// 0600, parent directory 0700) on first run. A key file readable by group or
// others is refused with ErrKeyPermissions, as ssh does, because anyone who
// reads it can sign records as this node. An empty IdentityPath gives an
// ephemeral key, which short-lived clients such as `find` use.
//
// No discovery runs here: mDNS and other multicast discovery are never
// enabled, and no NAT port mapping is attempted unless asked for, so hosts in
// tests and devnets stay on the addresses they were given.
package p2p
