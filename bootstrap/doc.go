// Package bootstrap owns joining a network: bootstrap peer lists from flags
// and $NETGET_BOOTSTRAP, resolving /dns4, /dns6 and /dnsaddr multiaddrs, and
// connecting to the peers with retry and backoff. It says clearly which
// peers were unreachable and why, and fails fast (no hang) when none is.
// Connections it makes are protected in the connection manager, so trimming
// never drops a node's way into the network.
//
// It receives a libp2p host and never builds one.
package bootstrap
