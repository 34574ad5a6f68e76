package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
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
//	→ {"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":100,"cursor":"first"}
//	← {"records":["CiQIARIg…", …],"next":"12D3KooWNdPPuKUnWtfUaWe6q2otTzrEuGd7YytF347fMnJbKgDG"}
//	→ {"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","limit":100,"cursor":"12D3KooWNdPPuKUnWtfUaWe6q2otTzrEuGd7YytF347fMnJbKgDG"}
//	← {"records":["CiQIARIg…", …]}             (no "next": the last page)
//	→ {"type":"list","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","cursor":"12D3"}
//	← {"error":"bad request: cursor \"12D3\": …"}
//
//	→ {"type":"put","record":"CiQIARIg…"}
//	← {}                                        (or {"error":"record expired: at …"})
//
// list without a cursor returns up to limit (at most MaxListLimit)
// unexpired records the node holds for a service CID, the best first,
// leaving out withdrawn ones and, on a registry, those of providers its
// health checks found dead: what a find wants. list with a cursor pages
// through all of them, in the order of the providers' binary peer IDs:
// "cursor":"first" asks the first page, and each page answers "next", the
// cursor of the page after it (the peer ID of the last provider the page
// considered), until the last page, which has no "next". A page carries up
// to limit records (0 or more than the node's page size: its page size,
// Config.ListPage, default 100) and at most PageBytes of envelopes, so it
// fits one message. A provider whose record stays served from one page to
// the next is returned exactly once, whatever joins or leaves between
// pages; one that joins behind the cursor is not, one that leaves ahead
// of it is not. A cursor that is neither "first" nor a peer ID, or a
// negative limit, is answered with an error starting "bad request" and the
// stream stays open. Wire compatibility: a requester that sends no cursor
// gets the first page it always got and no "next" (older requesters
// refuse unknown fields); an older node resets the stream of a request
// with a cursor (an unknown field): Client.ListAll then returns that
// error, and its caller may fall back to a list without a cursor.
//
// put offers one signed record or tombstone: the node verifies it exactly
// as a DHT write (the same record.Validator, then the same store, which
// refuses a seq not above the one held), so a tombstone replaces the
// record at once. A malformed, oversized or unknown request resets the
// stream with a log line saying why, and so does a peer over its request
// rate (the Handler's Limiter).
const (
	// MaxMessageSize bounds one registry-protocol message.
	MaxMessageSize = 256 << 10
	// MaxListLimit is the most records one list without a cursor returns.
	MaxListLimit = 32
	// DefaultPageLimit is the default of the most records one page of a
	// paged list carries (dht.Config.ListPage).
	DefaultPageLimit = 100
	// MaxPageLimit is the most a node's page size may be set to: a
	// service's records are capped at 1,024 by default
	// (dht.StoreLimits.PerService), so one page can carry them all.
	MaxPageLimit = 1024
	// PageBytes is the most envelope bytes one page carries: in base64
	// within JSON, with MaxPageLimit records' quotes and commas, it fits
	// MaxMessageSize.
	PageBytes = (MaxMessageSize - 16<<10) * 3 / 4
	// FirstPage is the cursor of a paged list's first page.
	FirstPage = "first"
	// maxCursorLen bounds a cursor before it is decoded (a peer ID in
	// base58 is about 52 characters).
	maxCursorLen = 128
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
	Cursor string `json:"cursor,omitempty"`
	Record []byte `json:"record,omitempty"`
}

// response answers a request: the records held, or why not; Next is the
// cursor of the page after this one, for a paged list.
type response struct {
	Records [][]byte `json:"records,omitempty"`
	Next    string   `json:"next,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// listArgs is what a list request asks, decoded.
type listArgs struct {
	c     cid.Cid
	paged bool    // a cursor was sent
	after peer.ID // the page starts after this provider ("": the first)
}

// decodeRequest strictly decodes and checks one request body. For a list
// it returns what it asks. A paged list with a bad cursor or limit fails
// with ErrBadRequest (answered; the stream stays open); anything else bad
// fails with ErrBadMessage (the stream is reset).
func decodeRequest(b []byte) (request, listArgs, error) {
	var req request
	if err := decodeStrict(b, &req); err != nil {
		return req, listArgs{}, err
	}
	switch req.Type {
	case msgPush:
		if len(req.Record) == 0 || req.CID != "" || req.Limit != 0 || req.Cursor != "" {
			return req, listArgs{}, fmt.Errorf("%w: put takes exactly one record", ErrBadMessage)
		}
		return req, listArgs{}, nil
	case msgList:
		c, err := cid.Decode(req.CID)
		if err != nil {
			return req, listArgs{}, fmt.Errorf("%w: cid: %w", ErrBadMessage, err)
		}
		if len(req.Record) != 0 {
			return req, listArgs{}, fmt.Errorf("%w: list takes no record", ErrBadMessage)
		}
		if req.Cursor == "" {
			if req.Limit <= 0 || req.Limit > MaxListLimit {
				req.Limit = MaxListLimit
			}
			return req, listArgs{c: c}, nil
		}
		args := listArgs{c: c, paged: true}
		if args.after, err = parseCursor(req.Cursor); err != nil {
			return req, args, err
		}
		if req.Limit < 0 {
			return req, args, fmt.Errorf("%w: limit %d: want 0 (the node's page size) or more", ErrBadRequest, req.Limit)
		}
		return req, args, nil
	}
	return req, listArgs{}, fmt.Errorf("%w: unknown type %.32q", ErrBadMessage, req.Type)
}

// parseCursor decodes a paged list's cursor: FirstPage, or the peer ID a
// page answered as next.
func parseCursor(s string) (peer.ID, error) {
	if s == FirstPage {
		return "", nil
	}
	if len(s) > maxCursorLen {
		return "", fmt.Errorf("%w: cursor of %d characters: want %q or a peer ID", ErrBadRequest, len(s), FirstPage)
	}
	p, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w: cursor %q: want %q or a peer ID: %w", ErrBadRequest, s, FirstPage, err)
	}
	return p, nil
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
