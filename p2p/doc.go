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
package p2p
