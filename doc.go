// Package netget is the embeddable netget node: the one place a node is
// assembled, as libp2p.New is for a host or tsnet.Server for a Tailscale
// node. The CLI, its daemon and devnet build their nodes through it, and
// so can any Go service that wants to be discoverable:
//
//	cfg := netget.Service()
//	cfg.Bootstrap = addrs // the network's registries
//	n, err := netget.New(ctx, cfg)
//	...
//	defer n.Close()
//	_, err = n.Provide(ctx, netget.Spec{Name: "DatabaseService"})
//
// It owns, for one node: the identity (Config.Identity, IdentityFile or
// DataDir/identity.key), the data dir's trust check and lock
// (CheckDataDir), the persistent record datastore (Persist), the libp2p
// host (package p2p), the DHT node (package dht), joining through the
// bootstrap peers (package bootstrap), the registries (those joined and
// those added at run time, kept in DataDir/registries.json), the services
// it provides and their republish loops, the channels it serves and opens
// (package dht/channel: Handle, Dial, Connect), its Prometheus metrics,
// and an optional WebSocket bridge (package bridge), whose finds go
// through the node's Find (dhtFinder) and whose channels through its
// Connect (channelOpener, bridge_channel.go: the page's checked Origin
// becomes the Origin claim; a provider's refusal code reaches the page as
// is). Close undoes all of it, top-down, once.
//
// Choices made here:
//   - Presets in the memberlist style: Service, Registry, Client, Daemon
//     return a complete Config whose fields carry every limit of the layers
//     below with its documented default; callers change fields, not
//     options.
//   - The registry rule is one function (Node.useRegistry): a peer becomes
//     a registry, at start or at run time, only if it announces
//     bootstrap.RegistryAgent; the Registry preset announces it. A
//     bootstrap peer on another network fails New at once unless
//     Config.JoinOptional.
//   - Provide checks a Spec with the record package's rules
//     (record.ValidateName, ValidateTTL, ValidateMeta) before anything
//     starts; the DHT and every verifier apply the same rules again.
//   - A node locks its data dir whenever its identity or records live
//     there, so two processes never run with one peer ID; a Client
//     (Ephemeral) never locks, so a find can run beside a daemon.
//   - AddRegistry persists an address only after the registry was reached
//     and announced itself as one: a failed add leaves nothing behind.
//   - Channels: Handle before Provide marks the record as taking channels
//     (record.MetaChannel); a Spec that claims them without a handler is
//     refused (ErrNoHandler), so a record never promises what the node does
//     not serve. Connect tries the eligible providers in the order Find
//     yields them and returns the last refusal when all refuse. The node
//     raises go-libp2p's per-peer stream limits for the channel protocol to
//     Config.Channel.MaxChannelsPerPeer (p2p.Config.PeerStreams).
//   - Behind NAT, a node's relays are its registries: Config.Host.Relays
//     defaults to the node's connected registries (Node.relayCandidates),
//     so a provider that is private (AutoNAT, or p2p.ReachabilityPrivate)
//     reserves a slot on them and its records carry the circuit
//     addresses. Its first publication waits for one (Config.RelayWait);
//     every change of its addresses republishes (dht.Node.Provide).
//     Status.Reachability says how it is reached; Node.Ping reaches a
//     found provider, through its relay if need be.
//   - Close withdraws the services provided in this run (bounded by
//     Config.CloseTimeout) before it stops the DHT, so finders stop seeing
//     them at once rather than at expiry.
package netget
