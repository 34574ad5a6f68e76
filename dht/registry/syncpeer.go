package registry

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Replica is what a SyncHandler serves: a registry's records as the sync
// protocol sees them, and the write path of records forwarded to it. Its
// methods run with the node's own lifetime, not a request's.
type Replica interface {
	// Digest summarises the records held (expired ones left out).
	Digest() *Digest
	// Pull returns the envelopes held in key-hash range [from, last]
	// whose key have lacks or names with a lower seq, in key-hash order,
	// at most budget bytes of them; more says it stopped early, and next
	// is the key hash to resume from.
	Pull(from, last uint64, have []Entry, budget int) (envs [][]byte, next uint64, more bool)
	// Forwarded verifies and stores records forwarded by peer p, and
	// returns how many it refused.
	Forwarded(p peer.ID, envs [][]byte) (refused int)
}

// SyncHandler serves the sync protocol over a Replica, with each remote
// peer's requests bounded by one Limiter and the bytes its pulls take by
// another.
type SyncHandler struct {
	replica  Replica
	requests *Limiter
	bytes    *Limiter
	log      *slog.Logger
}

// NewSyncHandler returns a SyncHandler serving r, limiting each peer's
// requests by requests and the envelope bytes its pulls receive by bytes
// (whose burst must be at least PullBudget). A nil log discards.
func NewSyncHandler(r Replica, requests, bytes *Limiter, log *slog.Logger) *SyncHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SyncHandler{replica: r, requests: requests, bytes: bytes, log: log}
}

// HandleStream serves sync requests on s, one after another, as
// Handler.HandleStream does for the registry protocol. It is a
// network.StreamHandler.
func (h *SyncHandler) HandleStream(s network.Stream) {
	remote := s.Conn().RemotePeer()
	log := h.log.With("peer", remote, "protocol", s.Protocol())
	if err := s.Scope().SetService(SyncServiceName); err != nil {
		log.Debug("sync stream refused by resource manager", "err", err)
		s.Reset()
		return
	}
	serveRequests(s, "sync", h.requests, log, func(b []byte) (any, error) {
		return h.serve(remote, b)
	})
}

// serve answers one request from p, or says why it is bad.
func (h *SyncHandler) serve(p peer.ID, b []byte) (syncResponse, error) {
	var resp syncResponse
	req, have, err := decodeSyncRequest(b)
	if err != nil {
		return resp, err
	}
	switch req.Type {
	case msgDigest:
		resp.Digest = encodeDigest(h.replica.Digest())
	case msgPull:
		resp.Records, resp.Next, resp.More = h.replica.Pull(req.From, req.Last, have, PullBudget)
		n := 0
		for _, env := range resp.Records {
			n += len(env)
		}
		// The peer's byte rate: the response waits for its tokens,
		// within the exchange's deadline.
		ctx, cancel := context.WithTimeout(context.Background(), StreamTimeout/2)
		defer cancel()
		if err := h.bytes.WaitN(ctx, p, n); err != nil {
			return resp, fmt.Errorf("pull of %d bytes over the peer's byte rate: %w", n, err)
		}
	case msgForward:
		resp.Refused = h.replica.Forwarded(p, req.Records)
	}
	return resp, nil
}

// SyncClient sends sync-protocol requests from a host, keeping idle
// streams per peer for reuse. Close it with the host's node.
type SyncClient struct{ cl *Client }

// NewSyncClient returns a SyncClient speaking SyncProtocol(network) from h.
func NewSyncClient(h host.Host, network string) *SyncClient {
	return &SyncClient{cl: NewClient(h, SyncProtocol(network))}
}

// Close resets the idle streams.
func (sc *SyncClient) Close() { sc.cl.Close() }

// Digest asks p for its digest; it returns the response's size too.
func (sc *SyncClient) Digest(ctx context.Context, p peer.ID) (*Digest, int, error) {
	var resp syncResponse
	n, err := sc.cl.exchangeInto(ctx, p, syncRequest{Type: msgDigest}, &resp)
	if err != nil {
		return nil, n, err
	}
	d, err := decodeDigest(resp.Digest)
	return d, n, err
}

// Pulled is one pull's answer.
type Pulled struct {
	// Records are the envelopes sent, to be verified by the caller.
	Records [][]byte
	// More says the peer stopped early; Next is where to resume.
	More bool
	Next uint64
	// Bytes is the response's size on the wire.
	Bytes int
}

// Pull asks p for the records it holds in key-hash range [from, last] that
// have (at most MaxHave entries) lacks or holds older.
func (sc *SyncClient) Pull(ctx context.Context, p peer.ID, from, last uint64, have []Entry) (Pulled, error) {
	if len(have) > MaxHave {
		return Pulled{}, fmt.Errorf("%w: have list of %d entries, limit %d", ErrBadMessage, len(have), MaxHave)
	}
	var resp syncResponse
	n, err := sc.cl.exchangeInto(ctx, p, syncRequest{Type: msgPull, From: from, Last: last, Have: encodeEntries(have)}, &resp)
	if err != nil {
		return Pulled{Bytes: n}, err
	}
	if resp.More && (len(resp.Records) == 0 || resp.Next <= from || resp.Next > last) {
		return Pulled{Bytes: n}, fmt.Errorf("%w: pull resumes at %d, outside (%d, %d]", ErrBadMessage, resp.Next, from, last)
	}
	return Pulled{Records: resp.Records, More: resp.More, Next: resp.Next, Bytes: n}, nil
}

// Forward offers p up to MaxForward records this node just took; it
// returns how many p refused.
func (sc *SyncClient) Forward(ctx context.Context, p peer.ID, envs [][]byte) (int, error) {
	var resp syncResponse
	_, err := sc.cl.exchangeInto(ctx, p, syncRequest{Type: msgForward, Records: envs}, &resp)
	return resp.Refused, err
}
