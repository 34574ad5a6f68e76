// Package devnet runs a whole netget network in one process on 127.0.0.1,
// for `netget-peer devnet`: registries (with quick health checks), service
// nodes providing sample services with realistic metadata, a chat
// (ChatService: a chat server on 127.0.0.1 as the channel target of its
// own provider node, not churned; the page's chat panel opens a channel to
// it, so two tabs talk), a gateway node
// for the WebSocket bridge, optional churn (service nodes stopped, cleanly
// or by crashing, and restarted on a schedule), and the page the bridge
// serves at / with the devnet's state at /devnet.json. The page follows the
// service it shows with a live watch through the handshaker (netget.watch;
// one find on a bridge without the feature), so churn shows as it happens. Every node is built
// by netget.New from a preset (Registry, with records in memory; Service;
// Client for the gateway), so the devnet runs the very nodes the CLI and
// embedders run. The command wires it to the bridge; nothing here listens
// on a public interface.
package devnet
