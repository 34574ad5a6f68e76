package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
)

// The watch protocol, /netget/<network>/watch/1.0.0, is the registry
// protocol's sibling for live provider sets: one stream is one watch of
// one service. The watcher writes one request, then only reads (closing
// its write side, or writing anything more, ends the watch); the
// registry answers with a snapshot of what it holds for the service (one
// message per provider, then "synced"), then one message per change, until
// the watcher closes or resets the stream, the connection goes, or the
// registry drops the watch ("drop", with a reason, then the stream ends).
// Framing is the registry protocol's: a uvarint length and a JSON object
// of at most MaxMessageSize bytes.
//
//	→ {"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}
//	← {"type":"upsert","record":"CiQIARIg…"}             a provider served now
//	← {"type":"pending","peer":"12D3KooW…"}               held, first health check not done
//	← {"type":"remove","peer":"12D3KooW…","reason":"unhealthy"}
//	← {"type":"synced"}                                   end of the snapshot
//	← {"type":"upsert","record":"CiQIARIg…"}             a change: new provider or record
//	← {"type":"remove","peer":"12D3KooW…","reason":"withdrawn","record":"CiQIARIg…"}
//	← {"type":"remove","peer":"12D3KooW…","reason":"expired"}
//	← {"type":"drop","reason":"slow watcher: 256 events queued"}
//
// Every upsert carries a signed envelope, and a withdrawn remove its
// signed tombstone: the watcher verifies them like any record. A remove's
// reason is one of the Reason constants. A registry bounds the watches it
// serves per peer and in all; a watch over either bound gets a drop at
// once. A watcher that does not read fast enough for its queue to hold
// the changes is dropped ("slow watcher"), never buffered without bound;
// it may watch again and gets a fresh snapshot.
const (
	// WatchServiceName is the resource-manager service of the watch protocol.
	WatchServiceName = "netget.watch"
	// watchRequestTimeout bounds reading a watch request.
	watchRequestTimeout = 10 * time.Second
)

// Reasons a remove gives.
const (
	// ReasonWithdrawn: the provider published a signed tombstone.
	ReasonWithdrawn = "withdrawn"
	// ReasonExpired: the record's expires-at passed.
	ReasonExpired = "expired"
	// ReasonUnhealthy: the registry's health checks failed.
	ReasonUnhealthy = "unhealthy"
	// ReasonDeregistered: the registry deleted the record (unhealthy for
	// too long, evicted, or failed verification).
	ReasonDeregistered = "deregistered"
)

// Watch message types.
const (
	// WatchUpsert carries a provider's signed record: served now.
	WatchUpsert = "upsert"
	// WatchRemove names a provider no longer served, with a Reason (and,
	// when withdrawn, the signed tombstone).
	WatchRemove = "remove"
	// WatchPending names a provider the registry holds but has not judged
	// yet (its first health check is not done): whatever the watcher had
	// from this registry stands.
	WatchPending = "pending"
	// WatchSynced ends the snapshot.
	WatchSynced = "synced"
	// WatchDrop ends the watch, with a Reason.
	WatchDrop = "drop"
)

// WatchProtocol returns the watch protocol ID of network.
func WatchProtocol(network string) protocol.ID {
	return protocol.ID("/netget/" + network + "/watch/1.0.0")
}

// watchRequest opens a watch.
type watchRequest struct {
	CID string `json:"cid"`
}

// WatchMsg is one message a registry sends a watcher.
type WatchMsg struct {
	// Type is one of the Watch* constants.
	Type string `json:"type"`
	// Record is the signed envelope of an upsert, or the tombstone of a
	// withdrawn remove.
	Record []byte `json:"record,omitempty"`
	// Peer is the provider a remove or pending is about.
	Peer string `json:"peer,omitempty"`
	// Reason says why of a remove or a drop.
	Reason string `json:"reason,omitempty"`
}

// EncodeWatchMsg encodes m for the wire (no length prefix), so one
// change is encoded once for every watcher.
func EncodeWatchMsg(m WatchMsg) ([]byte, error) {
	b, err := encodeJSON(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadMessage, len(b), MaxMessageSize)
	}
	return b, nil
}

// WriteFrame writes one encoded message with its length prefix.
func WriteFrame(w io.Writer, b []byte) error { return msgio.NewVarintWriter(w).WriteMsg(b) }

// DecodeWatchMsg strictly decodes and checks one watch message: the
// fields its type needs and no others, a known reason, a peer that
// parses. The envelope inside is not verified here.
func DecodeWatchMsg(b []byte) (WatchMsg, peer.ID, error) {
	var m WatchMsg
	if err := decodeStrict(b, &m); err != nil {
		return m, "", err
	}
	bad := func(what string) (WatchMsg, peer.ID, error) {
		return m, "", fmt.Errorf("%w: %s %s", ErrBadMessage, m.Type, what)
	}
	var p peer.ID
	if m.Peer != "" {
		var err error
		if p, err = peer.Decode(m.Peer); err != nil {
			return m, "", fmt.Errorf("%w: peer: %w", ErrBadMessage, err)
		}
	}
	switch m.Type {
	case WatchUpsert:
		if len(m.Record) == 0 || m.Peer != "" || m.Reason != "" {
			return bad("takes exactly one record")
		}
	case WatchRemove:
		switch {
		case p == "":
			return bad("takes a peer")
		case m.Reason == ReasonWithdrawn && len(m.Record) == 0:
			return bad("withdrawn takes the tombstone")
		case m.Reason != ReasonWithdrawn && len(m.Record) != 0:
			return bad("takes a record only when withdrawn")
		case m.Reason != ReasonWithdrawn && m.Reason != ReasonExpired && m.Reason != ReasonUnhealthy && m.Reason != ReasonDeregistered:
			return bad(fmt.Sprintf("reason %.32q", m.Reason))
		}
	case WatchPending:
		if p == "" || m.Reason != "" || len(m.Record) != 0 {
			return bad("takes only a peer")
		}
	case WatchSynced:
		if m.Peer != "" || m.Reason != "" || len(m.Record) != 0 {
			return bad("takes nothing")
		}
	case WatchDrop:
		if m.Peer != "" || len(m.Record) != 0 || len(m.Reason) > 256 {
			return bad("takes only a short reason")
		}
	default:
		return m, "", fmt.Errorf("%w: unknown type %.32q", ErrBadMessage, m.Type)
	}
	return m, p, nil
}

// ReadWatchRequest reads and checks a watch request from s, by
// watchRequestTimeout, and returns the service CID to watch.
func ReadWatchRequest(s network.Stream) (cid.Cid, error) {
	_ = s.SetReadDeadline(time.Now().Add(watchRequestTimeout))
	defer s.SetReadDeadline(time.Time{})
	b, err := readMsg(s)
	if err != nil {
		return cid.Undef, err
	}
	return decodeWatchRequest(b)
}

func decodeWatchRequest(b []byte) (cid.Cid, error) {
	var req watchRequest
	if err := decodeStrict(b, &req); err != nil {
		return cid.Undef, err
	}
	c, err := cid.Decode(req.CID)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: cid: %w", ErrBadMessage, err)
	}
	return c, nil
}

// ErrWatchDropped is returned by WatchStream.Next when the registry ended
// the watch with a drop message; the error says its reason.
var ErrWatchDropped = errors.New("registry dropped the watch")

// WatchStream is one watch of a service on one registry, as the watcher
// reads it.
type WatchStream struct {
	s network.Stream
	r msgio.ReadCloser
}

// OpenWatch opens a watch of service c on peer p over protocol proto
// (WatchProtocol), from h, dialling p if need be.
func OpenWatch(ctx context.Context, h host.Host, proto protocol.ID, p peer.ID, c cid.Cid) (*WatchStream, error) {
	s, err := h.NewStream(ctx, p, proto)
	if err != nil {
		return nil, err
	}
	b, err := encodeJSON(watchRequest{CID: c.String()})
	if err == nil {
		_ = s.SetWriteDeadline(time.Now().Add(StreamTimeout))
		err = WriteFrame(s, b)
		_ = s.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		s.Reset()
		return nil, err
	}
	return &WatchStream{s: s, r: msgio.NewVarintReaderSize(s, MaxMessageSize)}, nil
}

// Next returns the next message and the peer it names (if any). A drop
// comes back as ErrWatchDropped with its reason; a malformed message as
// ErrBadMessage, after which the stream is reset.
func (w *WatchStream) Next() (WatchMsg, peer.ID, error) {
	b, err := w.r.ReadMsg()
	if err != nil {
		return WatchMsg{}, "", err
	}
	m, p, err := DecodeWatchMsg(b)
	w.r.ReleaseMsg(b)
	if err != nil {
		w.s.Reset()
		return m, p, err
	}
	if m.Type == WatchDrop {
		return m, p, fmt.Errorf("%w: %s", ErrWatchDropped, m.Reason)
	}
	return m, p, nil
}

// Close ends the watch.
func (w *WatchStream) Close() { w.s.Reset() }
