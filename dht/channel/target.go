package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/netget/netget-peer/record"
)

// tcpChunk is the most bytes of a tcp target one channel message carries.
const tcpChunk = 16 << 10

// Target is a local service a provider relays each channel to, over a
// fresh connection per channel: a WebSocket endpoint (ws:// or wss://, one
// WebSocket message per channel message, text or binary as sent) or a TCP
// port (tcp://, a byte stream: the channel's messages are its bytes).
type Target struct {
	// URL is the target, as parsed by ParseTarget.
	URL *url.URL
}

// ParseTarget parses a target URL: ws://HOST:PORT/PATH, wss://…, or
// tcp://HOST:PORT. Unless allowRemote, HOST must be loopback (localhost,
// 127.0.0.0/8, ::1): a provider relays the network to its own machine
// only, unless told otherwise.
func ParseTarget(raw string, allowRemote bool) (*Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTarget, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "tcp":
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("%w: %q: a tcp target is tcp://HOST:PORT, without a path", ErrBadTarget, raw)
		}
	default:
		return nil, fmt.Errorf("%w: %q: want ws://HOST:PORT/PATH, wss://… or tcp://HOST:PORT", ErrBadTarget, raw)
	}
	if u.Hostname() == "" || u.Port() == "" || u.User != nil {
		return nil, fmt.Errorf("%w: %q: want a host and a port, and no user", ErrBadTarget, raw)
	}
	if !allowRemote && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: %q is not loopback (localhost, 127.0.0.1, ::1): pass --target-remote to relay to another machine", ErrBadTarget, raw)
	}
	return &Target{URL: u}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Mode is the record.MetaChannel value of a service relayed to t:
// record.ChannelStream for tcp, record.ChannelMessages for WebSocket.
func (t *Target) Mode() string {
	if t.URL.Scheme == "tcp" {
		return record.ChannelStream
	}
	return record.ChannelMessages
}

// Handler returns the Handler relaying each channel f allows to a fresh
// connection to t. A target that cannot be reached refuses the channel
// with CodeUnavailable (the detail goes to log).
func (t *Target) Handler(f Filter, log *slog.Logger) Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return f.Wrap(func(ctx context.Context, cl Claims) (ServeFunc, error) {
		if t.URL.Scheme == "tcp" {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", t.URL.Host)
			if err != nil {
				log.Warn("channel target unavailable", "service", cl.Service, "target", t.URL.String(), "err", err)
				return nil, Refuse(CodeUnavailable, "the service's target is not reachable")
			}
			return func(ctx context.Context, c *Conn) { relayTCP(ctx, c, nc.(*net.TCPConn)) }, nil
		}
		ws, _, err := websocket.Dial(ctx, t.URL.String(), nil)
		if err != nil {
			log.Warn("channel target unavailable", "service", cl.Service, "target", t.URL.String(), "err", err)
			return nil, Refuse(CodeUnavailable, "the service's target is not reachable")
		}
		return func(ctx context.Context, c *Conn) { relayWS(ctx, c, ws) }, nil
	})
}

// relayWS relays c to ws, one message for one, until either side closes;
// close codes travel both ways. The opener's end of input (CloseWrite)
// leaves the WebSocket open: the target may still answer.
func relayWS(ctx context.Context, c *Conn, ws *websocket.Conn) {
	ws.SetReadLimit(int64(c.SendLimit()))
	var wg sync.WaitGroup
	wg.Go(func() { // channel → target
		for {
			m, err := c.Receive(ctx)
			var ce *CloseError
			switch {
			case errors.As(err, &ce):
				if ws.Close(websocket.StatusCode(ce.Code), ce.Reason) != nil {
					ws.CloseNow()
				}
				return
			case errors.Is(err, io.EOF):
				// WebSocket has no half close: the target may still
				// answer, until either side closes.
				continue
			case err != nil:
				ws.CloseNow()
				return
			}
			typ := websocket.MessageText
			if m.Type == Binary {
				typ = websocket.MessageBinary
			}
			if err := ws.Write(ctx, typ, m.Data); err != nil {
				c.Close(CloseInternal, "the target failed")
				return
			}
		}
	})
	for { // target → channel
		typ, data, err := ws.Read(ctx)
		if err != nil {
			c.Close(wsCloseCode(err))
			break
		}
		mt := Text
		if typ == websocket.MessageBinary {
			mt = Binary
		}
		if err := c.Send(ctx, Message{Type: mt, Data: data}); err != nil {
			ws.CloseNow()
			break
		}
	}
	wg.Wait()
}

// wsCloseCode maps the end of a target's WebSocket to the channel's close.
func wsCloseCode(err error) (int, string) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce) && validCloseCode(int(ce.Code)):
		return int(ce.Code), ce.Reason
	case errors.As(err, &ce):
		return CloseNormal, "the target closed"
	case strings.Contains(err.Error(), "read limited"):
		return CloseTooLarge, CodeTooLarge + ": the target's message is over the limit"
	}
	return CloseInternal, "the target failed"
}

// relayTCP relays c to nc as a byte stream until both directions ended or
// either side failed: end of input passes as a half close both ways.
func relayTCP(ctx context.Context, c *Conn, nc *net.TCPConn) {
	defer nc.Close()
	var wg sync.WaitGroup
	wg.Go(func() { // channel → target
		for {
			m, err := c.Receive(ctx)
			if errors.Is(err, io.EOF) {
				nc.CloseWrite()
				return
			}
			if err != nil {
				nc.Close()
				return
			}
			if _, err := nc.Write(m.Data); err != nil {
				c.Close(CloseInternal, "the target failed")
				return
			}
		}
	})
	buf := make([]byte, min(tcpChunk, c.SendLimit()))
	for { // target → channel
		n, err := nc.Read(buf)
		if n > 0 {
			if err := c.Send(ctx, Message{Type: Binary, Data: buf[:n]}); err != nil {
				nc.Close()
				break
			}
		}
		if errors.Is(err, io.EOF) {
			c.CloseWrite(ctx)
			break
		}
		if err != nil {
			c.Close(CloseInternal, "the target failed")
			break
		}
	}
	wg.Wait()
}
