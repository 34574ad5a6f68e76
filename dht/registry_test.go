package dht_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
	"github.com/netget/netget-peer/record/recordtest"
)

// openStore opens a Pebble datastore in dir, closed when t ends (after
// the nodes and hosts started later, since cleanups run last-in first-out).
func openStore(t testing.TB, dir string) ds.Batching {
	t.Helper()
	d, err := dht.OpenDatastore(dir)
	if err != nil {
		t.Fatalf("open datastore: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// registryOn starts a registry with identity key on datastore d.
func registryOn(t *testing.T, key crypto.PrivKey, d ds.Batching, health dht.Health) *dht.Node {
	t.Helper()
	cfg := p2ptest.Config()
	cfg.Identity = key
	return dhttest.NewNodeOn(t, p2ptest.NewHostFrom(t, cfg), "development", dht.ModeServer, func(c *dht.Config) {
		c.Datastore, c.Health = d, health
	})
}

// joined starts a node with identity key (nil: fresh) that joins reg and
// uses it as its registry.
func joined(t *testing.T, key crypto.PrivKey, reg *dht.Node, mode dht.Mode) *dht.Node {
	t.Helper()
	cfg := p2ptest.Config()
	cfg.Identity = key
	n := dhttest.NewNodeOn(t, p2ptest.NewHostFrom(t, cfg), "development", mode, nil)
	p2ptest.Connect(t, n.Host(), reg.Host())
	n.AddRegistry(reg.Host().ID())
	return n
}

// TestRecordsSurviveRestart: a registry on a persistent datastore serves
// every record it held after a restart, with nothing re-provided.
func TestRecordsSurviveRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "datastore")
	regKey, _ := recordtest.NewKey(t)
	func() {
		// A sub-test's cleanups close the first run: providers, registry,
		// host and datastore, in that order.
		t.Run("first run", func(t *testing.T) {
			reg := registryOn(t, regKey, openStore(t, dir), dht.Health{})
			for range 20 {
				p := joined(t, nil, reg, dht.ModeServer)
				if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", TTL: time.Hour}); err != nil {
					t.Fatal(err)
				}
				settle(t, p)
			}
			if got := reg.StoredRecords(); got != 20 {
				t.Fatalf("registry holds %d records, want 20", got)
			}
		})
	}()
	reg := registryOn(t, regKey, openStore(t, dir), dht.Health{})
	if got := reg.StoredRecords(); got != 20 {
		t.Fatalf("after restart the registry holds %d records, want 20", got)
	}
	finder := joined(t, nil, reg, dht.ModeClient)
	got, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("after restart a find got %d providers, want 20", len(got))
	}
	for _, r := range got {
		if r.Source != dht.SourceRegistry {
			t.Fatalf("result %s came by %q, want %q", r.Record.Peer, r.Source, dht.SourceRegistry)
		}
	}
}

// TestOpenDatastoreErrors: a path that is not a datastore fails with
// ErrDatastore naming it, never a panic.
func TestOpenDatastoreErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	for _, name := range []string{"CURRENT", "MANIFEST-000001", "OPTIONS-000003"} {
		if err := os.WriteFile(filepath.Join(corrupt, name), []byte("garbage\x00\xff"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, path := range map[string]string{"a file": file, "corrupt": corrupt} {
		t.Run(name, func(t *testing.T) {
			d, err := dht.OpenDatastore(path)
			if err == nil {
				d.Close()
				t.Fatalf("OpenDatastore(%s) succeeded", path)
			}
			if !errors.Is(err, dht.ErrDatastore) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want %v naming %s", err, dht.ErrDatastore, path)
			}
		})
	}
}

// TestHealthMonitor: a registry stops serving a provider that fails its
// checks, serves it again when it comes back and republishes, and deletes
// its records once it has been unhealthy for DeregisterAfter.
func TestHealthMonitor(t *testing.T) {
	ctx := testCtx(t)
	store := openStore(t, t.TempDir())
	reg := registryOn(t, mustKey(t), store, dht.Health{Interval: 50 * time.Millisecond, Failures: 2,
		DeregisterAfter: 500 * time.Millisecond, Timeout: 200 * time.Millisecond})
	provKey, provID := recordtest.NewKey(t)
	finder := joined(t, nil, reg, dht.ModeClient)
	c, _ := record.ServiceCID("development", "DatabaseService")
	key := record.Key(c, provID)
	pm := messenger(t, finder)
	served := func() bool {
		got, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		rec, _, _ := pm.GetValue(ctx, reg.Host().ID(), key)
		return len(got) == 1 && rec != nil
	}
	hidden := func() bool {
		got, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		rec, _, _ := pm.GetValue(ctx, reg.Host().ID(), key)
		return len(got) == 0 && rec == nil
	}
	// run starts the provider, publishes, and returns a func that kills it.
	run := func() func() {
		p := joined(t, provKey, reg, dht.ModeClient)
		if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
			t.Fatal(err)
		}
		settle(t, p)
		return func() { p.Close(); p.Host().Close() }
	}

	kill := run()
	eventually(t, "the provider is served", served)
	kill()
	eventually(t, "the dead provider's records are hidden", hidden)
	if reg.StoredRecords() == 0 {
		t.Fatal("records deleted already; want them hidden until DeregisterAfter")
	}
	if ps := reg.Providers(); len(ps) != 1 || ps[0].Peer != provID || ps[0].Healthy || ps[0].UnhealthySince.IsZero() {
		t.Fatalf("registry's provider states: %+v, want %s unhealthy", ps, provID)
	}

	kill = run()
	eventually(t, "the provider is served again after it republished", served)
	kill()
	eventually(t, "the provider is deregistered", func() bool { return reg.StoredRecords() == 0 })
	if hasPrefix(t, store, "/netget/") {
		t.Fatal("the deregistered provider's record is still in the datastore")
	}
}

// hasPrefix reports whether d holds any key under prefix.
func hasPrefix(t *testing.T, d ds.Datastore, prefix string) bool {
	t.Helper()
	res, err := d.Query(context.Background(), dsq.Query{Prefix: prefix, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error == nil {
			return true
		}
	}
	return false
}
