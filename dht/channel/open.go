package channel

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Open opens a channel to service on peer p, already known to h's
// peerstore (or connected), with the opener's claims cl (cl.Peer is
// ignored: the provider takes it from the connection). The channel's
// messages from p are bounded by cfg.MaxMessageSize; opening is bounded
// by ctx and cfg.OpenTimeout. A provider's refusal returns its
// *RefusedError.
func Open(ctx context.Context, h host.Host, network string, p peer.ID, cl Claims, cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	req := openRequest{Version: Version, Service: cl.Service, Origin: cl.Origin, Token: cl.Token, MaxMessage: cfg.MaxMessageSize}
	if err := checkOpen(req); err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.OpenTimeout)
	defer cancel()
	// A provider behind NAT is reached through its relay: that connection
	// is limited (the relay's byte and duration budget), and the channel
	// runs on it until a hole punch gives a direct one.
	st, err := h.NewStream(lpnetwork.WithAllowLimitedConn(ctx, ServiceName), p, Protocol(network))
	if err != nil {
		return nil, fmt.Errorf("open channel to %s: %w", p, err)
	}
	if err := st.Scope().SetService(ServiceName); err != nil {
		st.Reset()
		return nil, fmt.Errorf("open channel to %s: %w", p, err)
	}
	deadline, _ := ctx.Deadline()
	_ = st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := writeJSON(st, req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("open channel to %s: %w", p, err)
	}
	br := bufio.NewReaderSize(st, readBuffer)
	b, err := readJSON(br)
	if err != nil {
		st.Reset()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open channel to %s: %w", p, ctx.Err())
		}
		return nil, fmt.Errorf("open channel to %s: %w", p, err)
	}
	resp, err := decodeResponse(b)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("open channel to %s: %w", p, err)
	}
	if !resp.OK {
		st.Close()
		return nil, &RefusedError{Code: resp.Code, Reason: resp.Reason}
	}
	if !stop() {
		st.Reset()
		return nil, fmt.Errorf("open channel to %s: %w", p, ctx.Err())
	}
	_ = st.SetDeadline(time.Time{})
	cl.Peer = h.ID()
	return newConn(st, p, br, cl, cfg.MaxMessageSize, resp.MaxMessage), nil
}
