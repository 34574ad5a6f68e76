package dht

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
)

// The registry protocol, /netget/<network>/registry/1.0.0, is a one-shot
// request/response over a libp2p stream, served by every node for the
// records it holds (a registry holds every record pushed to it; any node
// holds its own and those the DHT placed on it). Each message is a uvarint
// length prefix and a JSON object of at most MaxMessageSize bytes. The
// requester writes one request and closes its write side; the responder
// writes one response and closes. Records travel as base64 signed
// envelopes and are verified by whoever receives them. A whole exchange is
// bounded by StreamTimeout.
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
	// StreamTimeout bounds a whole request/response exchange.
	StreamTimeout = 10 * time.Second

	// serviceName is the resource-manager service of the registry protocol.
	serviceName = "netget.registry"
	// msgList asks for the records a node holds for one service.
	msgList = "list"
	// msgPut offers a node one signed record.
	msgPut = "put"
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
	case msgPut:
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

// handleStream serves one registry-protocol request.
func (n *Node) handleStream(s network.Stream) {
	log := n.log.With("peer", s.Conn().RemotePeer(), "protocol", n.proto)
	if err := s.Scope().SetService(serviceName); err != nil {
		log.Debug("registry stream refused by resource manager", "err", err)
		s.Reset()
		return
	}
	if !n.limiter.allow(s.Conn().RemotePeer()) {
		log.Info("registry stream reset: rate limited")
		s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(StreamTimeout))
	b, err := readMsg(s)
	if err != nil {
		log.Info("registry stream reset", "err", err)
		s.Reset()
		return
	}
	req, c, err := decodeRequest(b)
	if err != nil {
		log.Info("registry stream reset", "err", err)
		s.Reset()
		return
	}
	var resp response
	switch req.Type {
	case msgList:
		resp.Records = n.store.list(c, n.now(), listOpts{limit: req.Limit})
	case msgPut:
		if _, _, err := n.accept(n.ctx, req.Record); err != nil {
			log.Debug("put refused", "err", err)
			resp.Error = err.Error()
		}
	}
	if err := writeMsg(s, resp); err != nil {
		log.Debug("registry response not sent", "err", err)
		s.Reset()
		return
	}
	s.Close()
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
	resp, err := n.exchange(ctx, p, request{Type: msgPut, Record: env})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return fmt.Errorf("%s refused the record: %s", p, resp.Error)
	}
	return nil
}

// exchange sends one request to p and reads its response.
func (n *Node) exchange(ctx context.Context, p peer.ID, req request) (response, error) {
	var resp response
	s, err := n.host.NewStream(ctx, p, n.proto)
	if err != nil {
		return resp, err
	}
	defer s.Close()
	deadline := time.Now().Add(StreamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.SetDeadline(deadline)
	if err := writeMsg(s, req); err != nil {
		s.Reset()
		return resp, err
	}
	_ = s.CloseWrite()
	b, err := readMsg(s)
	if err != nil {
		s.Reset()
		return resp, err
	}
	if err := decodeStrict(b, &resp); err != nil {
		return resp, err
	}
	return resp, nil
}
