package netget_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht/channel"
)

// TestBridgeChannel: a WebSocket client of a node's bridge opens channels
// to a provider node through libp2p: open → opened with the provider's
// record, text and binary round trips, the page's Origin reaching the
// provider as its claim, a refusal code, a message over the provider's
// limit (too_large, only that channel closes), a provider's close and a
// provider node gone (close 1006).
func TestBridgeChannel(t *testing.T) {
	reg := registry(t)
	pcfg := netget.Service()
	pcfg.Channel.MaxMessageSize = 1024
	prov := start(t, pcfg, reg)
	origins := make(chan string, 8)
	if err := prov.Handle("Echo", func(_ context.Context, cl channel.Claims) (channel.ServeFunc, error) {
		origins <- cl.Origin
		return echo(make(chan error, 1)), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := prov.Handle("Closed", channel.Filter{Origins: []string{"https://app.example"}}.Wrap(channel.Accept(
		func(ctx context.Context, c *channel.Conn) { c.Close(4001, "room closed") }))); err != nil {
		t.Fatal(err)
	}
	provide(t, prov, "Echo", nil)
	provide(t, prov, "Closed", nil)

	bcfg := netget.Client()
	bcfg.BridgeAddr = "127.0.0.1:0"
	bcfg.Bridge = bridge.DefaultConfig("", "")
	bcfg.Bridge.PingInterval = 0
	node := start(t, bcfg, reg)
	ws := dialBridge(t, node.BridgeURL(), "http://localhost:3000")

	ws.send(`{"type":"open","id":"e1","service":"Echo"}`)
	opened := ws.next()
	if opened["type"] != "opened" || opened["peer"] != prov.ID().String() {
		t.Fatalf("got %v, want opened by %s", opened, prov.ID())
	}
	if got := <-origins; got != "http://localhost:3000" {
		t.Fatalf("provider's Origin claim %q, want the page's", got)
	}
	if m := ws.next(); m["type"] != "message" || !strings.HasPrefix(m["data"].(string), "hello ") {
		t.Fatalf("got %v, want the provider's greeting", m)
	}
	ws.send(`{"type":"send","id":"e1","data":"ping"}`)
	if m := ws.next(); m["data"] != "ping" {
		t.Fatalf("got %v, want the echo of ping", m)
	}
	ws.sendBinary("e1", []byte{0, 1, 255})
	if id, data := ws.nextBinary(); id != "e1" || string(data) != "\x00\x01\xff" {
		t.Fatalf("binary echo %q %x", id, data)
	}

	t.Run("refused", func(t *testing.T) {
		ws.t = t
		ws.send(`{"type":"open","id":"r1","service":"Closed"}`)
		if e := ws.next(); e["type"] != "error" || e["code"] != "forbidden" {
			t.Fatalf("got %v, want error forbidden", e)
		}
	})
	t.Run("over the provider's limit", func(t *testing.T) {
		ws.t = t
		ws.send(`{"type":"open","id":"e2","service":"Echo"}`)
		ws.next() // opened
		<-origins
		ws.next() // greeting
		ws.send(`{"type":"send","id":"e2","data":"` + strings.Repeat("x", 2000) + `"}`)
		if e := ws.next(); e["type"] != "error" || e["code"] != "too_large" {
			t.Fatalf("got %v, want error too_large", e)
		}
		if c := ws.next(); c["type"] != "close" || c["id"] != "e2" || c["code"] != float64(1009) {
			t.Fatalf("got %v, want close e2 1009", c)
		}
		ws.send(`{"type":"send","id":"e1","data":"still"}`)
		if m := ws.next(); m["id"] != "e1" || m["data"] != "still" {
			t.Fatalf("got %v, want e1's echo", m)
		}
	})
	t.Run("another provider accepts", func(t *testing.T) {
		ws.t = t
		var accepting string
		for i, refuse := range []bool{true, false, true} {
			p := start(t, netget.Service(), reg)
			h := channel.Accept(echo(make(chan error, 1)))
			if refuse {
				h = func(context.Context, channel.Claims) (channel.ServeFunc, error) {
					return nil, channel.Refuse(channel.CodeBusy, "provider %d is full", i)
				}
			} else {
				accepting = p.ID().String()
			}
			if err := p.Handle("Picky", h); err != nil {
				t.Fatal(err)
			}
			provide(t, p, "Picky", nil)
		}
		ws.send(`{"type":"open","id":"p1","service":"Picky"}`)
		if o := ws.next(); o["type"] != "opened" || o["peer"] != accepting {
			t.Fatalf("got %v, want opened by the one provider that accepts, %s", o, accepting)
		}
		ws.next() // greeting
		ws.send(`{"type":"close","id":"p1"}`)
		if c := ws.next(); c["type"] != "close" || c["id"] != "p1" {
			t.Fatalf("got %v, want close p1", c)
		}
	})
	t.Run("provider gone", func(t *testing.T) {
		ws.t = t
		prov.Close()
		start := time.Now()
		c := ws.next()
		if c["type"] != "close" || c["id"] != "e1" {
			t.Fatalf("got %v, want close e1", c)
		}
		t.Logf("close %v after %s", c["code"], time.Since(start))
	})
}

// wsClient is a raw WebSocket client of a bridge.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialBridge(t *testing.T, base, origin string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(base, "http", "ws", 1) + bridge.PathWS
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{bridge.Subprotocol},
		HTTPHeader: http.Header{"Origin": {origin}}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	w := &wsClient{t: t, c: c}
	w.send(`{"type":"hello","version":1}`)
	if f := w.next(); f["type"] != "welcome" {
		t.Fatalf("got %v, want welcome", f)
	}
	return w
}

func (w *wsClient) send(frame string) {
	w.t.Helper()
	w.write(websocket.MessageText, []byte(frame))
}

func (w *wsClient) sendBinary(id string, data []byte) {
	w.t.Helper()
	w.write(websocket.MessageBinary, bridge.AppendBinaryFrame(nil, bridge.BinaryFrame{ID: id, Data: data}))
}

func (w *wsClient) write(typ websocket.MessageType, b []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, typ, b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// next reads a JSON frame into a map.
func (w *wsClient) next() map[string]any {
	w.t.Helper()
	typ, b := w.read()
	if typ != websocket.MessageText {
		w.t.Fatalf("got a binary frame %x, want JSON", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		w.t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

func (w *wsClient) nextBinary() (string, []byte) {
	w.t.Helper()
	typ, b := w.read()
	f, err := bridge.ParseBinaryFrame(b)
	if typ != websocket.MessageBinary || err != nil {
		w.t.Fatalf("got %s, want a binary frame (%v)", b, err)
	}
	return f.ID, f.Data
}

func (w *wsClient) read() (websocket.MessageType, []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	typ, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return typ, b
}

// TestBridgeChannelSlowProvider: a provider that stops reading one
// channel stalls only that channel: while the page's messages to it wait
// on the libp2p stream's window (more than a yamux window's worth were
// sent), another channel of the same session still echoes and a find on it
// still answers; then the stuck channel ends with 1011 after WriteTimeout.
func TestBridgeChannelSlowProvider(t *testing.T) {
	reg := registry(t)
	prov := start(t, netget.Service(), reg)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the nodes close
	stuck := channel.Accept(func(ctx context.Context, c *channel.Conn) {
		select { // reads nothing, ever
		case <-release:
		case <-ctx.Done():
		}
	})
	if err := prov.Handle("Stuck", stuck); err != nil {
		t.Fatal(err)
	}
	if err := prov.Handle("Echo", channel.Accept(echo(make(chan error, 1)))); err != nil {
		t.Fatal(err)
	}
	provide(t, prov, "Stuck", nil)
	provide(t, prov, "Echo", nil)

	bcfg := netget.Client()
	bcfg.BridgeAddr = "127.0.0.1:0"
	bcfg.Bridge = bridge.DefaultConfig("", "")
	bcfg.Bridge.PingInterval = 0
	bcfg.Bridge.ChannelBytesPerSecond = 1 << 30 // the byte budget is not what is tested
	bcfg.Bridge.WriteTimeout = 2 * time.Second
	node := start(t, bcfg, reg)
	ws := dialBridge(t, node.BridgeURL(), "http://localhost:3000")
	ws.send(`{"type":"open","id":"s1","service":"Stuck"}`)
	if o := ws.next(); o["type"] != "opened" {
		t.Fatalf("got %v, want opened s1", o)
	}
	ws.send(`{"type":"open","id":"e1","service":"Echo"}`)
	if o := ws.next(); o["type"] != "opened" {
		t.Fatalf("got %v, want opened e1", o)
	}
	if m := ws.next(); m["id"] != "e1" || !strings.HasPrefix(m["data"].(string), "hello ") {
		t.Fatalf("got %v, want e1's greeting", m)
	}
	// 8 × 60 KiB: twice the 256 KiB a yamux stream takes before its
	// reader reads, within what the session queues for one channel.
	for range 8 {
		ws.sendBinary("s1", make([]byte, 60<<10))
	}
	ws.send(`{"type":"send","id":"e1","data":"still here"}`)
	ws.send(`{"type":"find","id":"f1","service":"Echo"}`)
	echoed, found := false, false
	for !echoed || !found {
		f := ws.next()
		switch {
		case f["id"] == "e1" && f["type"] == "message":
			if f["data"] != "still here" {
				t.Fatalf("got %v, want e1's echo", f)
			}
			echoed = true
		case f["id"] == "f1" && f["type"] == "done":
			found = true
		case f["id"] == "f1" && f["type"] == "result":
		default:
			t.Fatalf("got %v while s1 is stuck, want e1's echo and f1's results", f)
		}
	}
	if c := ws.next(); c["type"] != "close" || c["id"] != "s1" || c["code"] != float64(channel.CloseInternal) {
		t.Fatalf("got %v, want close s1 %d (the provider does not read)", c, channel.CloseInternal)
	}
	ws.send(`{"type":"send","id":"e1","data":"after"}`)
	if m := ws.next(); m["id"] != "e1" || m["data"] != "after" {
		t.Fatalf("got %v, want e1's echo", m)
	}
}
