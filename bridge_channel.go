package netget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht/channel"
)

// channelOpener adapts a node to the bridge's channels: a page's open is
// the node's Connect (find, skip providers that take no channels or do not
// match, try the others in order until one accepts), with the page's
// Origin as the bridge checked it as the Origin claim. Errors become the
// codes the page sees: a provider's refusal keeps its code.
type channelOpener struct{ n *Node }

// Open implements bridge.Opener.
func (o channelOpener) Open(ctx context.Context, req bridge.OpenRequest) (bridge.Channel, bridge.Result, error) {
	opts := ConnectOptions{Where: req.Where, Token: req.Token, Origin: req.Origin}
	if req.Peer != "" {
		p, err := peer.Decode(req.Peer)
		if err != nil {
			return nil, bridge.Result{}, &bridge.Error{Code: bridge.CodeBadRequest, Message: "peer is not a peer ID", Err: err}
		}
		opts.Peer = p
	}
	if dl, ok := ctx.Deadline(); ok {
		opts.Timeout = time.Until(dl)
	}
	c, r, err := o.n.Connect(ctx, req.Service, opts)
	if err != nil {
		return nil, bridge.Result{}, openError(req.Service, err)
	}
	return bridgeChannel{c}, bridge.Result{Record: r.Record, Source: string(r.Source), Elapsed: r.Elapsed}, nil
}

// openError maps a Connect error to what the page may be told.
func openError(service string, err error) error {
	var re *channel.RefusedError
	switch {
	case errors.As(err, &re):
		return &bridge.Error{Code: bridge.Code(re.Code), Message: "refused by the provider: " + truncateReason(re.Reason), Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrFindTimeout):
		return fmt.Errorf("open %s: %w", service, context.DeadlineExceeded)
	case errors.Is(err, ErrNoChannels):
		return &bridge.Error{Code: bridge.CodeNotFound, Message: "no provider of " + service + " takes channels", Err: err}
	case errors.Is(err, ErrClosed):
		return &bridge.Error{Code: bridge.CodeUnavailable, Message: "the bridge's node is shutting down", Err: err}
	}
	return &bridge.Error{Code: bridge.CodeUnavailable, Message: "no provider of " + service + " could be reached", Err: err}
}

func truncateReason(s string) string {
	if len(s) > channel.MaxCloseReason {
		return s[:channel.MaxCloseReason]
	}
	return s
}

// bridgeChannel adapts a *channel.Conn to bridge.Channel.
type bridgeChannel struct{ c *channel.Conn }

// Send implements bridge.Channel; a message over the provider's limit
// wraps bridge.ErrMessageTooLarge.
func (b bridgeChannel) Send(ctx context.Context, m bridge.Message) error {
	typ := channel.Text
	if m.Binary {
		typ = channel.Binary
	}
	err := b.c.Send(ctx, channel.Message{Type: typ, Data: m.Data})
	if errors.Is(err, channel.ErrTooLarge) {
		return fmt.Errorf("%w: %w", bridge.ErrMessageTooLarge, err)
	}
	return err
}

// Receive implements bridge.Channel: the provider's close is a
// *bridge.CloseError; its end of sending (CloseWrite) ends the channel
// normally.
func (b bridgeChannel) Receive(ctx context.Context) (bridge.Message, error) {
	m, err := b.c.Receive(ctx)
	var ce *channel.CloseError
	switch {
	case err == nil:
		return bridge.Message{Binary: m.Type == channel.Binary, Data: m.Data}, nil
	case errors.As(err, &ce):
		return bridge.Message{}, &bridge.CloseError{Code: ce.Code, Reason: ce.Reason}
	case errors.Is(err, io.EOF):
		return bridge.Message{}, &bridge.CloseError{Code: channel.CloseNormal, Reason: "the provider finished"}
	}
	return bridge.Message{}, err
}

// Close implements bridge.Channel.
func (b bridgeChannel) Close(code int, reason string) error { return b.c.Close(code, reason) }
