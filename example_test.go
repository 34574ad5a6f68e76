package netget_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	netget "github.com/netget/netget-peer"
)

// Example_provide makes a Go service discoverable: a node joins the
// network through its registries and provides a service until Close,
// which withdraws it.
func Example_provide() {
	ctx := context.Background()
	registries, stop := exampleNetwork(ctx)
	defer stop()

	cfg := netget.Service()
	cfg.Bootstrap = registries
	cfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	n, err := netget.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()

	svc, err := n.Provide(ctx, netget.Spec{
		Name: "DatabaseService",
		Meta: map[string]string{"region": "eu"},
		TTL:  time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("providing", svc.Name, "for", svc.ExpiresAt.Sub(svc.IssuedAt))
	// Output: providing DatabaseService for 1h0m0s
}

// Example_find finds the providers of a service: each result is a record
// whose signature the node verified, streamed as soon as it verifies.
func Example_find() {
	ctx := context.Background()
	registries, stop := exampleNetwork(ctx, "DatabaseService")
	defer stop()

	cfg := netget.Client()
	cfg.Bootstrap = registries
	n, err := netget.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()

	err = n.Find(ctx, "DatabaseService", netget.FindOptions{Timeout: 10 * time.Second}, func(r netget.Result) bool {
		fmt.Println("found", r.Record.Name, "in", r.Record.Meta["region"], "via", r.Source)
		return true // false stops the search
	})
	if err != nil && !errors.Is(err, netget.ErrFindTimeout) {
		log.Fatal(err)
	}
	// Output: found DatabaseService in eu via registry
}

// exampleNetwork starts a registry on 127.0.0.1 and a node providing each
// of services (region eu), and returns the registry's address and how to
// stop them all.
func exampleNetwork(ctx context.Context, services ...string) ([]ma.Multiaddr, func()) {
	dir, err := os.MkdirTemp("", "netget-example-")
	if err != nil {
		log.Fatal(err)
	}
	cfg := netget.Registry()
	cfg.DataDir = dir
	cfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	reg, err := netget.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	addrs := []ma.Multiaddr{ma.StringCast(reg.Addrs()[0])}
	stop := func() { reg.Close(); os.RemoveAll(dir) }
	if len(services) == 0 {
		return addrs, stop
	}
	scfg := netget.Service()
	scfg.Bootstrap = addrs
	scfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	provider, err := netget.New(ctx, scfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range services {
		if _, err := provider.Provide(ctx, netget.Spec{Name: name, Meta: map[string]string{"region": "eu"}}); err != nil {
			log.Fatal(err)
		}
	}
	return addrs, func() { provider.Close(); stop() }
}
