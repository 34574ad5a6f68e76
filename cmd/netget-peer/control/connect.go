package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/record"
)

// The connect route, POST /v1/connect: the daemon finds the service and
// opens a channel as Node.Connect does, then switches the connection to
// the channel's frames (HTTP 101, Upgrade: netget-channel), the daemon
// relaying between them and the channel until either side closes
// (channel.Splice; the client's end is channel.NewLocal).
const (
	// ChannelUpgrade is the Upgrade token of POST /v1/connect.
	ChannelUpgrade = "netget-channel"
	// Response headers of the switch: the provider, the channel's mode
	// (record.MetaChannel) and the largest message the provider takes.
	HeaderPeer       = "Netget-Peer"
	HeaderMode       = "Netget-Mode"
	HeaderMaxMessage = "Netget-Max-Message"

	// CodeRefused is the error of a connect every provider refused; its
	// message carries the provider's refusal code (channel.RefusedError).
	CodeRefused = "channel_refused" // 403
	// CodeNoChannels: no provider found takes channels (or matches).
	CodeNoChannels = "no_channels" // 404
)

// ConnectRequest is the body of POST /v1/connect (netget.ConnectOptions).
type ConnectRequest struct {
	Service string            `json:"service"`
	Peer    string            `json:"peer,omitempty"`
	Where   map[string]string `json:"where,omitempty"`
	Token   string            `json:"token,omitempty"`
	Timeout Duration          `json:"timeout,omitempty"`
	// MaxMessage is the largest message the client takes (default
	// channel.DefaultMaxMessageSize).
	MaxMessage int `json:"max_message,omitempty"`
	// Network, when set, must be the daemon's (CodeWrongNetwork).
	Network string `json:"network,omitempty"`
}

// Connected describes the channel a Client.Connect opened.
type Connected struct {
	Peer peer.ID
	// Mode is record.ChannelMessages or record.ChannelStream.
	Mode string
}

// handleConnect serves POST /v1/connect.
func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req ConnectRequest
	e := decode(w, r, &req)
	var o netget.ConnectOptions
	if e == nil {
		e = s.checkNetwork(req.Network)
	}
	if e == nil {
		o, e = connectOptions(req)
	}
	if e != nil {
		s.fail(w, r, e)
		return
	}
	c, res, err := s.node.Connect(r.Context(), req.Service, o)
	if err != nil {
		s.fail(w, r, connectError(err))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		c.Close(channel.CloseInternal, "the daemon could not relay")
		s.fail(w, r, internal(err))
		return
	}
	_ = conn.SetDeadline(time.Time{})
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s: %s\r\n%s: %s\r\n%s: %d\r\n\r\n",
		ChannelUpgrade, HeaderPeer, c.Peer(), HeaderMode, res.Record.AcceptsChannels(), HeaderMaxMessage, c.SendLimit())
	if err := brw.Flush(); err != nil {
		c.Close(channel.CloseGoingAway, "the client went away")
		conn.Close()
		return
	}
	s.log.Debug("channel relayed for a client", "service", req.Service, "peer", c.Peer())
	channel.Splice(context.WithoutCancel(r.Context()), c, conn)
}

// connectOptions checks req.
func connectOptions(req ConnectRequest) (netget.ConnectOptions, *Error) {
	o := netget.ConnectOptions{Where: req.Where, Token: req.Token, Timeout: time.Duration(req.Timeout)}
	if err := record.ValidateName(req.Service); err != nil {
		return o, badRequest(CodeInvalidName, err.Error())
	}
	if req.Peer != "" {
		p, err := peer.Decode(req.Peer)
		if err != nil {
			return o, badRequest(CodeBadRequest, fmt.Sprintf("peer %q: %v", req.Peer, err))
		}
		o.Peer = p
	}
	if o.Timeout < 0 || o.Timeout > MaxFindTimeout {
		return o, badRequest(CodeBadRequest, fmt.Sprintf("timeout %s: want between 0 (the default) and %s", o.Timeout, MaxFindTimeout))
	}
	return o, nil
}

// connectError maps what Node.Connect returned to the API error.
func connectError(err error) *Error {
	var re *channel.RefusedError
	switch {
	case errors.As(err, &re):
		return &Error{Status: http.StatusForbidden, Code: CodeRefused, Message: err.Error()}
	case errors.Is(err, netget.ErrNoChannels):
		return &Error{Status: http.StatusNotFound, Code: CodeNoChannels, Message: err.Error()}
	}
	return publishError(err)
}

// Connect asks the daemon to open a channel as req says and returns its
// end of it; errors are *Error (CodeRefused carries the provider's
// refusal in its message).
func (c *Client) Connect(ctx context.Context, req ConnectRequest) (*channel.Conn, Connected, error) {
	if req.MaxMessage == 0 {
		req.MaxMessage = channel.DefaultMaxMessageSize
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, Connected{}, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://netget/v1/connect", bytes.NewReader(b))
	if err != nil {
		return nil, Connected{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", ChannelUpgrade)
	resp, err := c.hc.Do(hreq)
	if err != nil {
		if noDaemon(err) {
			return nil, Connected{}, fmt.Errorf("%w on %s", ErrNoDaemon, c.socket)
		}
		return nil, Connected{}, fmt.Errorf("control api /v1/connect: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		e := &Error{}
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(e); err != nil || e.Code == "" {
			e = &Error{Code: CodeInternal, Message: "control api /v1/connect: daemon answered " + resp.Status}
		}
		e.Status = resp.StatusCode
		return nil, Connected{}, e
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	p, perr := peer.Decode(resp.Header.Get(HeaderPeer))
	maxOut, merr := strconv.Atoi(resp.Header.Get(HeaderMaxMessage))
	if !ok || perr != nil || merr != nil || maxOut < channel.MinMessageLimit {
		resp.Body.Close()
		return nil, Connected{}, fmt.Errorf("control api /v1/connect: a switch without a usable connection or headers")
	}
	info := Connected{Peer: p, Mode: resp.Header.Get(HeaderMode)}
	cl := channel.Claims{Service: req.Service, Token: req.Token}
	return channel.NewLocal(rw, p, cl, req.MaxMessage, maxOut), info, nil
}
