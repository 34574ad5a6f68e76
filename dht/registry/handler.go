package registry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
	ma "github.com/multiformats/go-multiaddr"
)

// Holder is what a Handler serves: the records a node holds and the one
// write path every record takes. Both run with the node's own lifetime,
// not a request's.
type Holder interface {
	// List returns up to limit signed records held for service c, leaving
	// out expired and withdrawn ones (and those the node judged dead).
	List(c cid.Cid, limit int) [][]byte
	// Page returns the records List would serve for service c whose
	// providers come after after in binary peer-ID order, up to limit
	// records and bytes bytes of envelopes, and the provider the next page
	// starts after ("": none follows).
	Page(c cid.Cid, after peer.ID, limit, bytes int) ([][]byte, peer.ID)
	// Accept verifies and stores env, put by peer from on its connection
	// from addr; its error is sent back to the requester as the reason for
	// the refusal.
	Accept(env []byte, from peer.ID, addr ma.Multiaddr) error
}

// Handler serves the registry protocol over a Holder, with each remote
// peer's requests bounded by a Limiter.
type Handler struct {
	holder   Holder
	limiter  *Limiter
	pageSize int
	log      *slog.Logger
}

// NewHandler returns a Handler serving h, limiting each peer by l, with
// pages of a paged list of at most pageSize records (ValidatePageSize;
// DefaultPageLimit when 0). A nil log discards.
func NewHandler(h Holder, l *Limiter, pageSize int, log *slog.Logger) (*Handler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if pageSize == 0 {
		pageSize = DefaultPageLimit
	}
	if err := ValidatePageSize(pageSize); err != nil {
		return nil, err
	}
	return &Handler{holder: h, limiter: l, pageSize: pageSize, log: log}, nil
}

// ValidatePageSize checks the most records a node puts in one page of a
// paged list: 1 to MaxPageLimit.
func ValidatePageSize(n int) error {
	if n < 1 || n > MaxPageLimit {
		return fmt.Errorf("list page size %d: want 1 to %d records", n, MaxPageLimit)
	}
	return nil
}

// HandleStream serves registry-protocol requests on s, one after another,
// until the requester closes its side or leaves the stream idle for
// streamIdleTimeout. A bad request resets the stream. It is a
// network.StreamHandler.
func (h *Handler) HandleStream(s network.Stream) {
	remote := s.Conn().RemotePeer()
	log := h.log.With("peer", remote, "protocol", s.Protocol())
	if err := s.Scope().SetService(ServiceName); err != nil {
		log.Debug("registry stream refused by resource manager", "err", err)
		s.Reset()
		return
	}
	serveRequests(s, "registry", h.limiter, log, func(b []byte) (any, error) {
		return h.serve(b, remote, s.Conn().RemoteMultiaddr())
	})
}

// serveRequests is the request loop the registry and sync protocols
// share: it reads requests from s one after another, each allowed by
// limit for the remote peer, and writes serve's answer to each, until the
// requester closes its side (the stream is closed), the stream ends as
// such streams normally do (debug), or a request is bad or over the limit
// (the stream is reset; info). what names the protocol in the log.
func serveRequests(s network.Stream, what string, limit *Limiter, log *slog.Logger, serve func(b []byte) (any, error)) {
	remote := s.Conn().RemotePeer()
	r := msgio.NewVarintReaderSize(s, MaxMessageSize)
	for {
		_ = s.SetDeadline(time.Now().Add(streamIdleTimeout))
		b, err := r.ReadMsg()
		switch {
		case errors.Is(err, io.EOF):
			s.Close() // the requester is done
			return
		case normalEnd(err) != "":
			log.Debug(what+" stream ended", "how", normalEnd(err))
			s.Reset()
			return
		case err != nil:
			log.Info(what+" stream reset", "err", fmt.Errorf("%w: %w", ErrBadMessage, err))
			s.Reset()
			return
		case !limit.Allow(remote):
			log.Info(what + " stream reset: rate limited")
			s.Reset()
			return
		}
		_ = s.SetDeadline(time.Now().Add(StreamTimeout))
		resp, err := serve(b)
		r.ReleaseMsg(b)
		if err != nil {
			log.Info(what+" stream reset", "err", err)
			s.Reset()
			return
		}
		if err := writeMsg(s, resp); err != nil {
			log.Debug(what+" response not sent", "err", err)
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

// serve answers one request from peer from at addr, or says why it is bad.
func (h *Handler) serve(b []byte, from peer.ID, addr ma.Multiaddr) (response, error) {
	var resp response
	req, list, err := decodeRequest(b)
	if errors.Is(err, ErrBadRequest) {
		resp.Error = err.Error() // answered: the stream stays usable
		return resp, nil
	}
	if err != nil {
		return resp, err
	}
	switch {
	case req.Type == msgList && list.paged:
		limit := req.Limit
		if limit == 0 || limit > h.pageSize {
			limit = h.pageSize
		}
		var next peer.ID
		resp.Records, next = h.holder.Page(list.c, list.after, limit, PageBytes)
		if next != "" {
			resp.Next = next.String()
		}
	case req.Type == msgList:
		resp.Records = h.holder.List(list.c, req.Limit)
	case req.Type == msgPush:
		if err := h.holder.Accept(req.Record, from, addr); err != nil {
			h.log.Debug("put refused", "err", err)
			resp.Error = err.Error()
		}
	}
	return resp, nil
}
