package netget_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht/channel"
)

// Example_channel serves a service's channels from Go and opens one from
// another node by service name: the provider sees the opener's claims
// first and may refuse with a code.
func Example_channel() {
	ctx := context.Background()
	registries, stop := exampleNetwork(ctx)
	defer stop()

	cfg := netget.Service()
	cfg.Bootstrap = registries
	cfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	provider, err := netget.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()
	err = provider.Handle("ChatService", func(ctx context.Context, cl channel.Claims) (channel.ServeFunc, error) {
		if cl.Token != "s3cret" {
			return nil, channel.Refuse(channel.CodeForbidden, "a token is required")
		}
		return func(ctx context.Context, c *channel.Conn) {
			for {
				m, err := c.Receive(ctx) // a *channel.CloseError once the opener closed
				if err != nil {
					return
				}
				m.Data = []byte(strings.ToUpper(string(m.Data)))
				if c.Send(ctx, m) != nil { // blocks while the opener does not read
					return
				}
			}
		}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := provider.Provide(ctx, netget.Spec{Name: "ChatService"}); err != nil { // says netget.channel=messages
		log.Fatal(err)
	}

	ccfg := netget.Client()
	ccfg.Bootstrap = registries
	client, err := netget.New(ctx, ccfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	_, _, err = client.Connect(ctx, "ChatService", netget.ConnectOptions{})
	fmt.Println(err)
	c, _, err := client.Connect(ctx, "ChatService", netget.ConnectOptions{Token: "s3cret"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(channel.CloseNormal, "bye")
	if err := c.Send(ctx, channel.Message{Type: channel.Text, Data: []byte("hello")}); err != nil {
		log.Fatal(err)
	}
	m, err := c.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Type, string(m.Data))
	// Output:
	// channel refused: forbidden: a token is required
	// text HELLO
}
