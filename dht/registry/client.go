package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// Client sends registry-protocol requests from a host, keeping idle
// streams per peer for reuse. Close it with the host's node.
type Client struct {
	host    host.Host
	proto   protocol.ID
	streams *streamPool
}

// NewClient returns a Client speaking protocol proto (Protocol(network))
// from h.
func NewClient(h host.Host, proto protocol.ID) *Client {
	return &Client{host: h, proto: proto, streams: newStreamPool()}
}

// Close resets the idle streams; later requests close theirs when done.
func (cl *Client) Close() { cl.streams.close() }

// List asks peer p for up to limit records it holds for service c. The
// caller verifies every record returned.
func (cl *Client) List(ctx context.Context, p peer.ID, c cid.Cid, limit int) ([][]byte, error) {
	return cl.list(ctx, p, c, limit, cl.openIdentified)
}

// ListDialling is List for a peer this node is dialling (a find's DHT
// walk asks each peer it dials): on a new connection the request leaves
// with the connection, without waiting for identify's exchange (see
// openNow), a round trip sooner than List.
func (cl *Client) ListDialling(ctx context.Context, p peer.ID, c cid.Cid, limit int) ([][]byte, error) {
	return cl.list(ctx, p, c, limit, cl.openNow)
}

func (cl *Client) list(ctx context.Context, p peer.ID, c cid.Cid, limit int, open opener) ([][]byte, error) {
	var resp response
	if _, err := cl.exchangeVia(ctx, p, request{Type: msgList, CID: c.String(), Limit: limit}, &resp, open); err != nil {
		return nil, err
	}
	if len(resp.Records) > MaxListLimit {
		return nil, fmt.Errorf("%w: %d records, limit %d", ErrBadMessage, len(resp.Records), MaxListLimit)
	}
	return resp.Records, nil
}

// ListPage asks peer p for one page of the records it serves for service
// c: the page after cursor (FirstPage to start), of up to limit records
// (0: p's page size). It returns the records and the cursor of the next
// page, "" after the last. The caller verifies every record returned.
func (cl *Client) ListPage(ctx context.Context, p peer.ID, c cid.Cid, cursor string, limit int) ([][]byte, string, error) {
	if limit < 0 || limit > MaxPageLimit {
		return nil, "", fmt.Errorf("%w: limit %d: want 0 to %d", ErrBadRequest, limit, MaxPageLimit)
	}
	if cursor == "" {
		cursor = FirstPage
	}
	resp, err := cl.exchange(ctx, p, request{Type: msgList, CID: c.String(), Limit: limit, Cursor: cursor})
	switch {
	case err != nil:
		return nil, "", err
	case resp.Error != "":
		return nil, "", fmt.Errorf("%w: %s: %s", ErrRefused, p, resp.Error)
	case len(resp.Records) > MaxPageLimit || limit > 0 && len(resp.Records) > limit:
		return nil, "", fmt.Errorf("%w: a page of %d records, asked %d", ErrBadMessage, len(resp.Records), limit)
	case resp.Next != "" && len(resp.Records) == 0:
		return nil, "", fmt.Errorf("%w: an empty page with a next cursor", ErrBadMessage)
	}
	return resp.Records, resp.Next, nil
}

// MaxListAll is the most records Client.ListAll gathers from one peer:
// 64 services' worth at the default of 1,024 providers each, far above
// what one service holds, so a peer that keeps paging cannot keep the
// client reading.
const MaxListAll = 1 << 16

// ListAll asks peer p for every record it serves for service c, page after
// page of up to limit records (0: p's page size), in the providers'
// peer-ID order. Each page's next cursor must come after the one before
// (so the walk ends), and a peer that pages past MaxListAll records is
// cut off with ErrBadMessage. The caller verifies every record returned.
func (cl *Client) ListAll(ctx context.Context, p peer.ID, c cid.Cid, limit int) ([][]byte, error) {
	var all [][]byte
	var after peer.ID
	cursor := FirstPage
	for {
		page, next, err := cl.ListPage(ctx, p, c, cursor, limit)
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		np, err := peer.Decode(next)
		switch {
		case err != nil:
			return all, fmt.Errorf("%w: next cursor: %w", ErrBadMessage, err)
		case np <= after && cursor != FirstPage:
			return all, fmt.Errorf("%w: next cursor %s does not advance", ErrBadMessage, next)
		case len(all) >= MaxListAll:
			return all, fmt.Errorf("%w: more than %d records", ErrBadMessage, MaxListAll)
		}
		after, cursor = np, next
	}
}

// Push offers peer p one signed record; p's refusal comes back as an error.
func (cl *Client) Push(ctx context.Context, p peer.ID, env []byte) error {
	resp, err := cl.exchange(ctx, p, request{Type: msgPush, Record: env})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return fmt.Errorf("%s refused the record: %s", p, resp.Error)
	}
	return nil
}

// exchange sends one request to p and reads its response, on an idle
// stream to p when there is one, else on a new stream, which it keeps for
// the next request. A kept stream the peer has since closed costs one
// retry on a fresh stream (requests are idempotent).
func (cl *Client) exchange(ctx context.Context, p peer.ID, req request) (response, error) {
	var resp response
	_, err := cl.exchangeInto(ctx, p, req, &resp)
	return resp, err
}

// exchangeInto is exchange for any request and response type of cl's
// protocol: it decodes the response into resp and returns its size in
// bytes.
func (cl *Client) exchangeInto(ctx context.Context, p peer.ID, req, resp any) (int, error) {
	return cl.exchangeVia(ctx, p, req, resp, cl.openIdentified)
}

// opener opens a new stream of a client's protocol to a peer.
type opener func(ctx context.Context, p peer.ID) (network.Stream, error)

// exchangeVia is exchangeInto with open for the stream when no idle one
// is kept.
func (cl *Client) exchangeVia(ctx context.Context, p peer.ID, req, resp any, open opener) (int, error) {
	deadline := time.Now().Add(StreamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if s := cl.streams.take(p); s != nil {
		n, err := roundTrip(s, req, resp, deadline)
		if err == nil {
			cl.streams.give(p, s)
			return n, nil
		}
		s.Reset()
		if ctx.Err() != nil {
			return n, err
		}
	}
	s, err := open(ctx, p)
	if err != nil {
		return 0, err
	}
	n, err := roundTrip(s, req, resp, deadline)
	if unsupported(err) {
		err = fmt.Errorf("%w: %s does not speak %s", ErrUnsupported, p, cl.proto)
	}
	if err != nil {
		s.Reset()
		return n, err
	}
	cl.streams.give(p, s)
	return n, nil
}

// openIdentified opens a stream of cl's protocol to p with go-libp2p's
// host, which dials p if need be and, on a new connection, waits for
// identify's exchange before it proposes the protocol. A provider behind
// NAT is reached through a relay: its connection is limited (bounded in
// time and bytes by the relay), which suits a request and its answer.
func (cl *Client) openIdentified(ctx context.Context, p peer.ID) (network.Stream, error) {
	return cl.host.NewStream(network.WithAllowLimitedConn(ctx, "netget registry"), p, cl.proto)
}

// openNow opens a stream of cl's protocol to p, dialling p if need be, without
// waiting for the connection's identify exchange: the protocol is proposed
// in the request's own write (multistream-select's lazy handshake, which
// go-libp2p's host uses too, but only once identify has listed the peer's
// protocols). The host's NewStream first waits out identify on a new
// connection, one round trip before the request may leave; a find asks
// each peer its DHT walk dials as the connection comes up, one round trip
// before kad-dht's own query to it. A peer that does not speak the
// protocol answers "na": the request fails on its read with
// ErrUnsupported, as a negotiation would have failed. A provider behind NAT is reached through a relay: its
// connection is limited (bounded in time and bytes by the relay), which
// suits a request and its answer.
func (cl *Client) openNow(ctx context.Context, p peer.ID) (network.Stream, error) {
	s, err := cl.host.Network().NewStream(network.WithAllowLimitedConn(ctx, "netget registry"), p)
	if err != nil && ctx.Err() != nil {
		// yamux reports a context that ended while it sent the stream's
		// SYN as ErrTimeout ("i/o deadline reached"): say it was the
		// context (a find that has its answer cancels its other lists).
		return nil, fmt.Errorf("open a stream to %s: %w (%w)", p, ctx.Err(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open a stream to %s: %w", p, err)
	}
	if err := s.SetProtocol(cl.proto); err != nil {
		s.Reset()
		return nil, fmt.Errorf("open a stream to %s: %w", p, err)
	}
	return &lazyStream{Stream: s, rw: msmux.NewMSSelect(s, cl.proto)}, nil
}

// unsupported reports whether err says the peer refused the protocol
// proposed lazily: "na", or, when the request that followed the proposal
// reached the peer's protocol selection first, the stream reset that
// go-libp2p's host answers a failed negotiation with.
func unsupported(err error) bool {
	var se *network.StreamError
	return errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) ||
		errors.As(err, &se) && se.Remote && se.ErrorCode == network.StreamProtocolNegotiationFailed
}

// lazyStream is a stream whose reads, writes and close go through
// multistream-select's lazy handshake (go-libp2p's host wraps its streams
// the same way).
type lazyStream struct {
	network.Stream
	rw msmux.LazyConn
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.rw.Write(b) }
func (s *lazyStream) Close() error                { return s.rw.Close() }

// CloseWrite sends the handshake, if nothing was written yet, before
// closing the write side.
func (s *lazyStream) CloseWrite() error {
	_ = s.rw.Flush()
	return s.Stream.CloseWrite()
}

// roundTrip writes req on s and reads the response into resp, by
// deadline, returning the response's size.
func roundTrip(s network.Stream, req, resp any, deadline time.Time) (int, error) {
	_ = s.SetDeadline(deadline)
	if err := writeMsg(s, req); err != nil {
		return 0, err
	}
	b, err := readMsg(s)
	if err != nil {
		return 0, err
	}
	if err := decodeStrict(b, resp); err != nil {
		return len(b), err
	}
	_ = s.SetDeadline(time.Time{})
	return len(b), nil
}
