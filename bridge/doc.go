// Package bridge will own the WebSocket endpoint that lets web pages find
// services through a local peer: its JSON protocol, its filters (origin,
// token, rate, size) and the embedded handshaker script. It depends on a
// narrow finder interface, never on the DHT type. Not built yet (issue 4).
package bridge
