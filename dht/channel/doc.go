// Package channel owns netget's channels between peers: the wire protocol
// /netget/<network>/channel/1.0.0 (PROTOCOL.md), Conn (one open channel:
// ordered messages both ways with flow control end to end), the provider
// side (Server, its Handlers and admission limits, the Filter allow-lists)
// and the relays to a local Target (ws:// messages, tcp:// bytes).
//
// It knows nothing of the DHT: the root package finds a provider, connects
// to it and calls Open; a provider's node runs a Server and marks its
// records as taking channels (record.MetaChannel).
//
// # Choices made here
//
//   - Messages, not bytes: a frame is a type (text, binary, end, close), a
//     uvarint length and the payload, so a WebSocket message crosses as
//     one message. Each side announces the largest message it takes when
//     the channel opens; Send refuses larger ones (ErrTooLarge) without
//     sending, and a receiver closes a channel on which one arrives anyway
//     (CloseTooLarge), reading only its header.
//   - Flow control is the stream's: Send writes straight to the libp2p
//     stream and blocks while the other side does not read (yamux's
//     window). Receive reads the stream itself, in its caller's
//     goroutine, one frame at a time: no goroutine per channel reads
//     ahead, so at most one message per channel waits in memory, nothing
//     queues without bound, and a message goes from the muxer to its
//     reader without a hand-off. A Receive's ctx is a read deadline; a
//     frame half read when it ends is kept for the next Receive. The
//     other side's close frame is seen by a Receive or by Close: a side
//     that never calls Receive learns of it when its Sends fail.
//   - Close codes are WebSocket's (1000, 1001, 1002, 1007, 1009, 1011,
//     and 3000-4999 for applications), so a bridge passes them to a page
//     unchanged; refusals before a channel opens are stable string codes
//     (RefusedError).
//   - A Send cancelled by its ctx while blocked breaks the channel (the
//     frame may be half written), as coder/websocket does; a Receive
//     cancelled by its ctx leaves it open.
//   - A provider decides before anything reaches its service: admission
//     (OpenRate and OpenBurst per opener peer, with dht/registry's
//     Limiter: CodeRateLimited; MaxChannels, MaxChannelsPerPeer:
//     CodeBusy), the service's Handler
//     (Filter: CodeForbidden; a target that is down: CodeUnavailable). A
//     malformed open request resets the stream, with a log line.
//   - Targets are loopback unless the provider allows remote ones.
package channel
