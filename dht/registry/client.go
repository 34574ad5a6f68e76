package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
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
	resp, err := cl.exchange(ctx, p, request{Type: msgList, CID: c.String(), Limit: limit})
	if err != nil {
		return nil, err
	}
	if len(resp.Records) > MaxListLimit {
		return nil, fmt.Errorf("%w: %d records, limit %d", ErrBadMessage, len(resp.Records), MaxListLimit)
	}
	return resp.Records, nil
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
	// A provider behind NAT is reached through a relay: its connection is
	// limited (bounded in time and bytes by the relay), which suits a
	// request and its answer.
	s, err := cl.host.NewStream(network.WithAllowLimitedConn(ctx, "netget registry"), p, cl.proto)
	if err != nil {
		return 0, err
	}
	n, err := roundTrip(s, req, resp, deadline)
	if err != nil {
		s.Reset()
		return n, err
	}
	cl.streams.give(p, s)
	return n, nil
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
