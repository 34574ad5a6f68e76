package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
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
// saying why, and so does a peer over its request rate (the Handler's
// Limiter).
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

	// ServiceName is the resource-manager service of the registry protocol.
	ServiceName = "netget.registry"
	// msgList asks for the records a node holds for one service.
	msgList = "list"
	// msgPush offers a node one signed record (a push; "put" on the wire).
	msgPush = "put"
)

// Protocol returns the registry protocol ID of network.
func Protocol(network string) protocol.ID {
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

func encodeJSON(v any) ([]byte, error) { return json.Marshal(v) }

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
