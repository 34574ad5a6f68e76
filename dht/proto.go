package dht

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
)

// The registry protocol, /netget/<network>/registry/1.0.0, is request and
// response over a libp2p stream, served by every node for the records it
// holds (a registry holds every record pushed to it; any node holds its own
// and those the DHT placed on it). Each message is a uvarint length prefix
// and a JSON object of at most MaxMessageSize bytes. The requester writes a
// request and reads one response, and may send further requests on the same
// stream, one at a time, as kad-dht does with its own streams: opening a
// stream costs about as much as the exchange. The responder closes a
// stream when the requester closes its side or after streamIdleTimeout
// without a request. Records travel as base64 signed envelopes and are
// verified by whoever receives them. Each exchange is bounded by
// StreamTimeout.
//
//	→ {"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":16}
//	← {"records":["CiQIARIg…","CiQIARIg…"]}
//
//	→ {"type":"put","record":"CiQIARIg…"}
//	← {}                                        (or {"error":"record expired: at …"})
//
// list returns up to limit (at most MaxListLimit) unexpired records the
// node holds for a service CID, leaving out withdrawn ones and, on a
// registry, those of providers its health checks found dead. put offers one
// signed record or tombstone: the node verifies it exactly as a DHT write
// (the same record.Validator, then the same store, which refuses a seq not
// above the one held), so a tombstone replaces the record at once. A
// malformed, oversized or unknown request resets the stream with a log line
// saying why, and so does a peer over its request rate (Config.RequestRate).
const (
	// MaxMessageSize bounds one registry-protocol message.
	MaxMessageSize = 256 << 10
	// MaxListLimit is the most records one list returns.
	MaxListLimit = 32
	// StreamTimeout bounds one request/response exchange.
	StreamTimeout = 10 * time.Second
	// streamIdleTimeout is how long a responder keeps a stream open for
	// the requester's next request.
	streamIdleTimeout = 30 * time.Second

	// serviceName is the resource-manager service of the registry protocol.
	serviceName = "netget.registry"
	// msgList asks for the records a node holds for one service.
	msgList = "list"
	// msgPush offers a node one signed record (a push; "put" on the wire).
	msgPush = "put"
)

// RegistryProtocol returns the registry protocol ID of network.
func RegistryProtocol(network string) protocol.ID {
	return protocol.ID("/netget/" + network + "/registry/1.0.0")
}

// request is a registry-protocol request. Fields not used by Type are empty.
type request struct {
	Type   string `json:"type"`
	CID    string `json:"cid,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	Record []byte `json:"record,omitempty"`
}

// response answers a request: the records held, or why not.
type response struct {
	Records [][]byte `json:"records,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// decodeRequest strictly decodes and checks one request body. For a list
// it returns the service CID; for a put, cid.Undef.
func decodeRequest(b []byte) (request, cid.Cid, error) {
	var req request
	if err := decodeStrict(b, &req); err != nil {
		return req, cid.Undef, err
	}
	switch req.Type {
	case msgPush:
		if len(req.Record) == 0 || req.CID != "" || req.Limit != 0 {
			return req, cid.Undef, fmt.Errorf("%w: put takes exactly one record", ErrBadMessage)
		}
		return req, cid.Undef, nil
	case msgList:
		c, err := cid.Decode(req.CID)
		if err != nil {
			return req, cid.Undef, fmt.Errorf("%w: cid: %w", ErrBadMessage, err)
		}
		if len(req.Record) != 0 {
			return req, cid.Undef, fmt.Errorf("%w: list takes no record", ErrBadMessage)
		}
		if req.Limit <= 0 || req.Limit > MaxListLimit {
			req.Limit = MaxListLimit
		}
		return req, c, nil
	}
	return req, cid.Undef, fmt.Errorf("%w: unknown type %.32q", ErrBadMessage, req.Type)
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	return nil
}

func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadMessage, len(b), MaxMessageSize)
	}
	return msgio.NewVarintWriter(w).WriteMsg(b)
}

func readMsg(r io.Reader) ([]byte, error) {
	b, err := msgio.NewVarintReaderSize(r, MaxMessageSize).ReadMsg()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return b, nil
}

// handleStream serves registry-protocol requests on s, one after another,
// until the requester closes its side or leaves the stream idle for
// streamIdleTimeout. A bad request resets the stream.
func (n *Node) handleStream(s network.Stream) {
	remote := s.Conn().RemotePeer()
	log := n.log.With("peer", remote, "protocol", n.proto)
	if err := s.Scope().SetService(serviceName); err != nil {
		log.Debug("registry stream refused by resource manager", "err", err)
		s.Reset()
		return
	}
	r := msgio.NewVarintReaderSize(s, MaxMessageSize)
	for {
		_ = s.SetDeadline(time.Now().Add(streamIdleTimeout))
		b, err := r.ReadMsg()
		switch {
		case errors.Is(err, io.EOF):
			s.Close() // the requester is done
			return
		case normalEnd(err) != "":
			log.Debug("registry stream ended", "how", normalEnd(err))
			s.Reset()
			return
		case err != nil:
			log.Info("registry stream reset", "err", fmt.Errorf("%w: %w", ErrBadMessage, err))
			s.Reset()
			return
		case !n.limiter.allow(remote):
			log.Info("registry stream reset: rate limited")
			s.Reset()
			return
		}
		_ = s.SetDeadline(time.Now().Add(StreamTimeout))
		resp, err := n.serve(b, n.store.limits.sourceOf(s.Conn().RemoteMultiaddr()))
		r.ReleaseMsg(b)
		if err != nil {
			log.Info("registry stream reset", "err", err)
			s.Reset()
			return
		}
		if err := writeMsg(s, resp); err != nil {
			log.Debug("registry response not sent", "err", err)
			s.Reset()
			return
		}
	}
}

// normalEnd says how a read between requests ended when it ended as
// registry streams normally do, and "" for anything else: a requester
// resets the stream once it has its answer (a find that is done), or
// leaves it idle until streamIdleTimeout, or its connection goes. None of
// these is an error; they are logged at debug level.
func normalEnd(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, network.ErrReset):
		return "reset by the requester"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "idle timeout"
	case errors.Is(err, net.ErrClosed):
		return "connection closed"
	}
	return ""
}

// serve answers one request from src, or says why it is bad.
func (n *Node) serve(b []byte, src source) (response, error) {
	var resp response
	req, c, err := decodeRequest(b)
	if err != nil {
		return resp, err
	}
	switch req.Type {
	case msgList:
		resp.Records = n.store.list(n.ctx, c, n.now(), listOpts{limit: req.Limit})
	case msgPush:
		svc, _, err := n.accept(n.ctx, req.Record, src)
		if err != nil {
			n.log.Debug("put refused", "err", err)
			resp.Error = err.Error()
			break
		}
		// Answer once the provider's first check is done, so a provider
		// whose push returned is served at once (health.go).
		n.health.awaitFirst(n.ctx, svc.Peer, n.health.cfg.Timeout)
	}
	return resp, nil
}

// list asks peer p for the records it holds for service c. The caller
// verifies every record returned.
func (n *Node) list(ctx context.Context, p peer.ID, c cid.Cid, limit int) ([][]byte, error) {
	resp, err := n.exchange(ctx, p, request{Type: msgList, CID: c.String(), Limit: limit})
	if err != nil {
		return nil, err
	}
	if len(resp.Records) > MaxListLimit {
		return nil, fmt.Errorf("%w: %d records, limit %d", ErrBadMessage, len(resp.Records), MaxListLimit)
	}
	return resp.Records, nil
}

// push offers peer p one signed record; p's refusal comes back as an error.
func (n *Node) push(ctx context.Context, p peer.ID, env []byte) error {
	resp, err := n.exchange(ctx, p, request{Type: msgPush, Record: env})
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
func (n *Node) exchange(ctx context.Context, p peer.ID, req request) (response, error) {
	deadline := time.Now().Add(StreamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if s := n.streams.take(p); s != nil {
		resp, err := roundTrip(s, req, deadline)
		if err == nil {
			n.streams.give(p, s)
			return resp, nil
		}
		s.Reset()
		if ctx.Err() != nil {
			return resp, err
		}
	}
	s, err := n.host.NewStream(ctx, p, n.proto)
	if err != nil {
		return response{}, err
	}
	resp, err := roundTrip(s, req, deadline)
	if err != nil {
		s.Reset()
		return resp, err
	}
	n.streams.give(p, s)
	return resp, nil
}

// roundTrip writes req on s and reads the response, by deadline.
func roundTrip(s network.Stream, req request, deadline time.Time) (response, error) {
	var resp response
	_ = s.SetDeadline(deadline)
	if err := writeMsg(s, req); err != nil {
		return resp, err
	}
	b, err := readMsg(s)
	if err != nil {
		return resp, err
	}
	if err := decodeStrict(b, &resp); err != nil {
		return resp, err
	}
	_ = s.SetDeadline(time.Time{})
	return resp, nil
}
