package devnet

import (
	"context"
	"testing"
	"time"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht/channel"
)

// TestChat: two channels to the devnet's ChatService (from its gateway
// node, as two pages through the bridge would) are in one room: what one
// sends, both receive, through libp2p, the chat node's target relay and
// the chat server.
func TestChat(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Registries, cfg.Nodes = 1, 1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var chans [2]*channel.Conn
	for i := range chans {
		c, r, err := d.Gateway().Connect(ctx, ChatService, netget.ConnectOptions{Where: map[string]string{"room": "lobby"}})
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		if r.Record.Meta["kind"] != "chat" {
			t.Fatalf("record meta %v, want kind chat", r.Record.Meta)
		}
		defer c.Close(channel.CloseNormal, "")
		chans[i] = c
	}
	// The second member may join the room after the first message: send
	// until both have one (each send reaches everyone in the room).
	for _, c := range chans {
		for {
			if err := chans[0].Send(ctx, channel.Message{Type: channel.Text, Data: []byte("alice: hi")}); err != nil {
				t.Fatal(err)
			}
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			m, err := c.Receive(rctx)
			rcancel()
			if err == nil {
				if string(m.Data) != "alice: hi" {
					t.Fatalf("got %q, want alice: hi", m.Data)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("no chat message: %v", err)
			}
		}
	}
}
