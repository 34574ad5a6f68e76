package bridge_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/netget/netget-peer/bridge"
)

// leanConn is BenchmarkBridge's lean load generator: the client side of
// RFC 6455 over a net.Conn and nothing more than a find needs. The
// handshake is checked (101, Upgrade, Sec-WebSocket-Accept, subprotocol);
// each client frame is one text frame, masked as it is built with a fresh
// key (math/rand/v2: RFC 6455 asks for unpredictable keys, against
// proxies, not for cryptographic ones), written with one Write from a
// reused buffer; the reader takes server frames from a bufio.Reader into a
// reused buffer, joins fragments, answers pings, and fails on a close
// frame, a masked or reserved-bit frame, a binary message or one over
// maxLeanMessage. It does not check that text is UTF-8: the benchmark
// checks each answer's bytes. It is not safe for concurrent use: one goroutine per
// client, as the benchmark runs them.
//
// It exists because on two cores the clients' CPU is taken from the
// bridge: coder/websocket's client (a context timer, a reader and a
// writer lock per message, io.ReadAll) costs about as much as the server.
// The coder/websocket client is kept as a second row of the benchmark.
type leanConn struct {
	nc   net.Conn
	br   *bufio.Reader
	wbuf []byte // the frame being written
	msg  []byte // the message being read
}

// maxLeanMessage is the largest message a leanConn reads.
const maxLeanMessage = 1 << 20

// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dialLean opens a WebSocket to rawURL (ws://host:port/path) speaking the
// bridge's subprotocol.
func dialLean(ctx context.Context, rawURL string) (*leanConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("lean client: scheme %q: only ws:// is spoken", u.Scheme)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	c := &leanConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), wbuf: make([]byte, 0, 256), msg: make([]byte, 0, 1024)}
	if err := c.handshake(ctx, u); err != nil {
		nc.Close()
		return nil, fmt.Errorf("lean client: %w", err)
	}
	return c, nil
}

// handshake sends the upgrade request and checks the server's answer.
func (c *leanConn) handshake(ctx context.Context, u *url.URL) error {
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
		defer c.nc.SetDeadline(time.Time{})
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + bridge.Subprotocol + "\r\n\r\n"
	if _, err := io.WriteString(c.nc, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + wsGUID))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fmt.Errorf("handshake: status %s, want 101", resp.Status)
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return fmt.Errorf("handshake: Upgrade %q", resp.Header.Get("Upgrade"))
	case !strings.Contains(strings.ToLower(resp.Header.Get("Connection")), "upgrade"):
		return fmt.Errorf("handshake: Connection %q", resp.Header.Get("Connection"))
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return errors.New("handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Protocol") != bridge.Subprotocol:
		return fmt.Errorf("handshake: subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	return nil
}

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// writeText sends p as one masked text frame.
func (c *leanConn) writeText(p []byte) error { return c.writeFrame(opText, p) }

// writeFrame sends p as one final, masked frame of opcode op.
func (c *leanConn) writeFrame(op byte, p []byte) error {
	b := append(c.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], mrand.Uint32())
	b = append(b, mask[:]...)
	for i, x := range p {
		b = append(b, x^mask[i&3])
	}
	c.wbuf = b
	_, err := c.nc.Write(b)
	return err
}

// readText returns the next text message; the bytes are valid until the
// next call.
func (c *leanConn) readText() ([]byte, error) {
	msg := c.msg[:0]
	inMessage := false
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		if h[0]&0x70 != 0 || h[1]&0x80 != 0 {
			return nil, fmt.Errorf("lean client: reserved bits or a mask in a server frame (%#x %#x)", h[0], h[1])
		}
		n, err := c.payloadLen(h[1] & 0x7f)
		if err != nil {
			return nil, err
		}
		if op >= opClose && (!fin || n > 125) {
			return nil, fmt.Errorf("lean client: control frame %#x fragmented or over 125 bytes", op)
		}
		if n > maxLeanMessage || uint64(len(msg))+n > maxLeanMessage {
			return nil, fmt.Errorf("lean client: message over %d bytes", maxLeanMessage)
		}
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, msg[start:]); err != nil {
			return nil, err
		}
		switch op {
		case opPing:
			if err := c.writeFrame(opPong, msg[start:]); err != nil {
				return nil, err
			}
			msg = msg[:start]
			continue
		case opPong:
			msg = msg[:start]
			continue
		case opClose:
			return nil, fmt.Errorf("lean client: server closed: %s", closeReason(msg[start:]))
		case opText:
			if inMessage {
				return nil, errors.New("lean client: a text frame inside a fragmented message")
			}
			inMessage = true
		case opContinuation:
			if !inMessage {
				return nil, errors.New("lean client: a continuation frame outside a message")
			}
		default:
			return nil, fmt.Errorf("lean client: unexpected opcode %#x", op)
		}
		if fin {
			c.msg = msg
			return msg, nil
		}
	}
}

// payloadLen reads a frame's extended payload length, if any.
func (c *leanConn) payloadLen(n7 byte) (uint64, error) {
	var ext [8]byte
	switch n7 {
	case 126:
		if _, err := io.ReadFull(c.br, ext[:2]); err != nil {
			return 0, err
		}
		return uint64(binary.BigEndian.Uint16(ext[:2])), nil
	case 127:
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return 0, err
		}
		return binary.BigEndian.Uint64(ext[:]), nil
	}
	return uint64(n7), nil
}

// closeReason renders a close frame's payload: status and reason.
func closeReason(p []byte) string {
	if len(p) < 2 {
		return "no status"
	}
	return fmt.Sprintf("status %d %q", binary.BigEndian.Uint16(p), p[2:])
}

// close sends a close frame (1000) and closes the connection.
func (c *leanConn) close() {
	c.writeFrame(opClose, []byte{0x03, 0xe8})
	c.nc.Close()
}
