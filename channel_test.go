package netget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht/channel"
	"github.com/netget/netget-peer/record"
)

// echo serves a channel by greeting, then sending every message back
// until the channel closes, and reports how it closed on closed.
func echo(closed chan<- error) channel.ServeFunc {
	return func(ctx context.Context, c *channel.Conn) {
		if err := c.Send(ctx, channel.Message{Type: channel.Text, Data: []byte("hello " + c.Claims().Peer.String())}); err != nil {
			closed <- err
			return
		}
		for {
			m, err := c.Receive(ctx)
			if err != nil {
				closed <- err
				return
			}
			if err := c.Send(ctx, m); err != nil {
				closed <- err
				return
			}
		}
	}
}

// channelNet is a registry, a provider of Echo (and of Guarded, which
// wants a token) and a client, on 127.0.0.1.
func channelNet(t *testing.T) (prov, client *netget.Node, closed chan error) {
	t.Helper()
	reg := registry(t)
	prov = start(t, netget.Service(), reg)
	client = start(t, netget.Client(), reg)
	closed = make(chan error, 4)
	if err := prov.Handle("Echo", channel.Accept(echo(closed))); err != nil {
		t.Fatal(err)
	}
	guarded := channel.Filter{Tokens: []string{"s3cret"}}.Wrap(channel.Accept(echo(closed)))
	if err := prov.Handle("Guarded", guarded); err != nil {
		t.Fatal(err)
	}
	provide(t, prov, "Echo", map[string]string{"region": "eu"})
	provide(t, prov, "Guarded", nil)
	return prov, client, closed
}

func TestChannelConnect(t *testing.T) {
	prov, client, closed := channelNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, r, err := client.Connect(ctx, "Echo", netget.ConnectOptions{Where: map[string]string{"region": "eu"}})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if c.Peer() != prov.ID() || r.Record.Peer != prov.ID() {
		t.Fatalf("connected to %s (record %s), want %s", c.Peer(), r.Record.Peer, prov.ID())
	}
	if got := r.Record.Meta[record.MetaChannel]; got != record.ChannelMessages {
		t.Errorf("record says %s=%q, want %q", record.MetaChannel, got, record.ChannelMessages)
	}
	m, err := c.Receive(ctx)
	if want := "hello " + client.ID().String(); err != nil || m.Type != channel.Text || string(m.Data) != want {
		t.Fatalf("first message = %v %q, %v; want text %q", m.Type, m.Data, err, want)
	}
	for _, want := range []channel.Message{{Type: channel.Text, Data: []byte("ping")}, {Type: channel.Binary, Data: []byte{0, 1, 2, 255}}} {
		if err := c.Send(ctx, want); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got, err := c.Receive(ctx)
		if err != nil || got.Type != want.Type || string(got.Data) != string(want.Data) {
			t.Fatalf("echo = %v %v, %v; want %v %v", got.Type, got.Data, err, want.Type, want.Data)
		}
	}
	if err := c.Close(4000, "bye"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-closed:
		var ce *channel.CloseError
		if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
			t.Fatalf("provider's Receive after Close(4000, bye) = %v, want a *CloseError 4000 bye", err)
		}
	case <-ctx.Done():
		t.Fatal("the provider never saw the close")
	}
	if _, err := c.Receive(ctx); !errors.Is(err, channel.ErrClosed) {
		t.Errorf("Receive after Close = %v, want ErrClosed", err)
	}
}

func TestChannelRefusals(t *testing.T) {
	_, client, _ := channelNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := client.Connect(ctx, "Guarded", netget.ConnectOptions{})
	var re *channel.RefusedError
	if !errors.As(err, &re) || re.Code != channel.CodeForbidden {
		t.Fatalf("Connect without a token = %v, want a refusal %q", err, channel.CodeForbidden)
	}
	c, _, err := client.Connect(ctx, "Guarded", netget.ConnectOptions{Token: "s3cret"})
	if err != nil {
		t.Fatalf("Connect with the token: %v", err)
	}
	c.Close(channel.CloseNormal, "")
	_, _, err = client.Connect(ctx, "Echo", netget.ConnectOptions{Where: map[string]string{"region": "us"}})
	if !errors.Is(err, netget.ErrNoChannels) {
		t.Fatalf("Connect with where region=us = %v, want ErrNoChannels", err)
	}
}

func TestChannelNotOffered(t *testing.T) {
	reg := registry(t)
	prov := start(t, netget.Service(), reg)
	client := start(t, netget.Client(), reg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := prov.Provide(ctx, netget.Spec{Name: "Liar", Meta: map[string]string{record.MetaChannel: record.ChannelMessages}})
	if !errors.Is(err, netget.ErrNoHandler) {
		t.Fatalf("Provide claiming channels without a handler = %v, want ErrNoHandler", err)
	}
	provide(t, prov, "Plain", nil)
	var found netget.Result
	err = client.Find(ctx, "Plain", netget.FindOptions{Limit: 1}, func(r netget.Result) bool { found = r; return false })
	if err != nil || found.Record == nil {
		t.Fatalf("find Plain: %v", err)
	}
	if _, err := client.Dial(ctx, found, channel.Claims{}); !errors.Is(err, netget.ErrNoChannels) {
		t.Fatalf("Dial of a record without %s = %v, want ErrNoChannels", record.MetaChannel, err)
	}
	if _, _, err := client.Connect(ctx, "Plain", netget.ConnectOptions{Timeout: 5 * time.Second}); !errors.Is(err, netget.ErrNoChannels) {
		t.Fatalf("Connect to a service without channels = %v, want ErrNoChannels", err)
	}
}
