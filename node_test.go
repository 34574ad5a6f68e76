package netget_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	netget "github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
)

// loopback listens on 127.0.0.1 only, any port.
var loopback = []string{"/ip4/127.0.0.1/tcp/0"}

// start builds a node from cfg on 127.0.0.1, closed at cleanup.
func start(t *testing.T, cfg netget.Config, boot ...*netget.Node) *netget.Node {
	t.Helper()
	if cfg.Host.ListenAddrs != nil {
		cfg.Host.ListenAddrs = loopback
	}
	for _, b := range boot {
		cfg.Bootstrap = append(cfg.Bootstrap, addrOf(t, b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := netget.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// registry starts a Registry node keeping its records in a temp dir.
func registry(t *testing.T, boot ...*netget.Node) *netget.Node {
	t.Helper()
	cfg := netget.Registry()
	cfg.DataDir = t.TempDir()
	return start(t, cfg, boot...)
}

// addrOf is n's first full multiaddr.
func addrOf(t *testing.T, n *netget.Node) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(n.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// find collects what a find of name returns, by source.
func find(t *testing.T, n *netget.Node, name string) map[dht.Source][]peer.ID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(map[dht.Source][]peer.ID)
	err := n.Find(ctx, name, netget.FindOptions{Timeout: 10 * time.Second}, func(r netget.Result) bool {
		got[r.Source] = append(got[r.Source], r.Record.Peer)
		return true
	})
	if err != nil && !errors.Is(err, netget.ErrFindTimeout) {
		t.Fatalf("find %s: %v", name, err)
	}
	return got
}

// provide provides name from n and fails the test on error.
func provide(t *testing.T, n *netget.Node, name string, meta map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.Provide(ctx, netget.Spec{Name: name, Meta: meta}); err != nil {
		t.Fatalf("provide %s: %v", name, err)
	}
}

func registryIDs(n *netget.Node) []peer.ID {
	var out []peer.ID
	for _, r := range n.Registries() {
		out = append(out, r.Peer)
	}
	return out
}

func TestNewPresets(t *testing.T) {
	reg := registry(t)
	if st := reg.Status(); st.ID != reg.ID() || st.Network != "development" || len(st.Addrs) == 0 || st.Sync == nil {
		t.Errorf("registry status = %+v (a registry syncs: Sync set)", st)
	}
	tests := []struct {
		name string
		cfg  func() netget.Config
	}{
		{"service", netget.Service},
		{"client", netget.Client},
		{"daemon", func() netget.Config { c := netget.Daemon(); c.DataDir = t.TempDir(); return c }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := start(t, tc.cfg(), reg)
			if got := registryIDs(n); !slices.Equal(got, []peer.ID{reg.ID()}) {
				t.Errorf("registries = %v, want [%s]", got, reg.ID())
			}
			if got := n.Joined(); !slices.Equal(got, []peer.ID{reg.ID()}) {
				t.Errorf("joined = %v, want [%s]", got, reg.ID())
			}
			if st := n.Status(); st.Sync != nil {
				t.Errorf("a %s syncs: status Sync = %+v, want nil (only registries sync)", tc.name, st.Sync)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := netget.New(ctx, netget.Service()); !errors.Is(err, netget.ErrBadConfig) {
		t.Errorf("service without bootstrap: err = %v, want ErrBadConfig", err)
	}
	bad := netget.Registry()
	bad.DataDir = filepath.Join(t.TempDir(), "registry")
	bad.Datastore.MemtableBytes = 2 << 30
	if _, err := netget.New(ctx, bad); !errors.Is(err, netget.ErrBadConfig) || !errors.Is(err, dht.ErrBadDatastoreOptions) {
		t.Errorf("registry with a 2 GiB memtable: err = %v, want ErrBadConfig and ErrBadDatastoreOptions", err)
	}
	if _, err := os.Stat(bad.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused registry left %s behind: %v", bad.DataDir, err)
	}
	cfg := netget.Registry()
	cfg.DataDir = t.TempDir()
	cfg.Host.ListenAddrs = loopback
	first := start(t, cfg)
	if _, err := netget.New(ctx, cfg); !errors.Is(err, netget.ErrAlreadyRunning) {
		t.Errorf("second node on %s: err = %v, want ErrAlreadyRunning", cfg.DataDir, err)
	}
	first.Close()
	if err := os.Chmod(cfg.DataDir, 0o770); err != nil {
		t.Fatal(err)
	}
	if _, err := netget.New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "not safe") {
		t.Errorf("group-writable data dir: err = %v, want it refused as not safe", err)
	}
}

func TestProvideFindUnprovide(t *testing.T) {
	reg := registry(t)
	svc := start(t, netget.Service(), reg)
	cli := start(t, netget.Client(), reg)
	provide(t, svc, "DatabaseService", map[string]string{"region": "eu"})
	if got := find(t, cli, "databaseservice"); !slices.Equal(got[dht.SourceRegistry], []peer.ID{svc.ID()}) {
		t.Errorf("find after provide = %v, want %s from the registry", got, svc.ID())
	}
	if st := svc.Services(); len(st) != 1 || st[0].Name != "DatabaseService" || st[0].Seq == 0 {
		t.Errorf("services = %+v, want DatabaseService published", st)
	}
	ctx := context.Background()
	if _, err := svc.Unprovide(ctx, "DatabaseService"); err != nil {
		t.Fatalf("unprovide: %v", err)
	}
	if got := find(t, cli, "DatabaseService"); len(got) != 0 {
		t.Errorf("find after unprovide = %v, want nothing", got)
	}
	if _, err := svc.Unprovide(ctx, "DatabaseService"); !errors.Is(err, netget.ErrNotProvided) {
		t.Errorf("second unprovide: err = %v, want ErrNotProvided", err)
	}
}

func TestProvideChecksSpec(t *testing.T) {
	reg := registry(t)
	svc := start(t, netget.Service(), reg)
	ctx := context.Background()
	tests := []struct {
		name string
		spec netget.Spec
	}{
		{"name", netget.Spec{Name: "bad name"}},
		{"ttl", netget.Spec{Name: "S", TTL: time.Millisecond}},
		{"meta", netget.Spec{Name: "S", Meta: map[string]string{"": "v"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.Provide(ctx, tc.spec); err == nil {
				t.Errorf("Provide(%+v) = nil error", tc.spec)
			}
		})
	}
	if got := svc.Services(); len(got) != 0 {
		t.Errorf("services after refusals = %+v, want none", got)
	}
}

func TestCloseWithdrawsAndIsIdempotent(t *testing.T) {
	reg := registry(t)
	svc := start(t, netget.Service(), reg)
	cli := start(t, netget.Client(), reg)
	provide(t, svc, "CacheService", nil)
	if got := find(t, cli, "CacheService"); len(got[dht.SourceRegistry]) != 1 {
		t.Fatalf("find before close = %v, want one from the registry", got)
	}
	if err := svc.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := svc.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if got := find(t, cli, "CacheService"); len(got) != 0 {
		t.Errorf("find after close = %v, want nothing (withdrawn)", got)
	}
	ctx := context.Background()
	if _, err := svc.Provide(ctx, netget.Spec{Name: "CacheService"}); !errors.Is(err, netget.ErrClosed) {
		t.Errorf("provide after close: err = %v, want ErrClosed", err)
	}
	if err := svc.Find(ctx, "CacheService", netget.FindOptions{}, func(netget.Result) bool { return true }); !errors.Is(err, netget.ErrClosed) {
		t.Errorf("find after close: err = %v, want ErrClosed", err)
	}
	if _, err := svc.AddRegistry(ctx, addrOf(t, reg)); !errors.Is(err, netget.ErrClosed) {
		t.Errorf("add registry after close: err = %v, want ErrClosed", err)
	}
}

func TestAddRemoveRegistry(t *testing.T) {
	reg := registry(t)
	svc := start(t, netget.Service(), reg)
	provide(t, svc, "QueueService", nil)
	later := registry(t, reg) // started after the service provided
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := svc.AddRegistry(ctx, addrOf(t, later)); err != nil {
		t.Fatalf("service adds %s: %v", later.ID(), err)
	}
	cli := start(t, netget.Client()) // knows no one yet
	id, err := cli.AddRegistry(ctx, addrOf(t, later))
	if err != nil || id != later.ID() {
		t.Fatalf("client adds registry: %s, %v", id, err)
	}
	if got := find(t, cli, "QueueService"); !slices.Equal(got[dht.SourceRegistry], []peer.ID{svc.ID()}) {
		t.Errorf("find through the added registry = %v, want %s from the registry", got, svc.ID())
	}
	if err := cli.RemoveRegistry(later.ID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if got := registryIDs(cli); len(got) != 0 {
		t.Errorf("registries after remove = %v, want none", got)
	}
	if got := find(t, cli, "QueueService"); len(got[dht.SourceRegistry]) != 0 {
		t.Errorf("find after remove = %v, want no registry source", got)
	}
	if err := cli.RemoveRegistry(later.ID()); !errors.Is(err, netget.ErrUnknownRegistry) {
		t.Errorf("second remove: err = %v, want ErrUnknownRegistry", err)
	}
}

func TestAddRegistryRefuses(t *testing.T) {
	reg := registry(t)
	svc := start(t, netget.Service(), reg)
	cfg := netget.Daemon()
	cfg.DataDir = t.TempDir()
	d := start(t, cfg, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	noPeer := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	closed := registry(t)
	down := addrOf(t, closed)
	closed.Close()
	tests := []struct {
		name string
		addr ma.Multiaddr
		want string
	}{
		{"no /p2p/", noPeer, noPeer.String()},
		{"unreachable", down, down.String()},
		{"not a registry", addrOf(t, svc), "does not announce itself as a registry"},
		{"itself", addrOf(t, d), "is this node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.AddRegistry(ctx, tc.addr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AddRegistry(%s) = %v, want an error naming %q", tc.addr, err, tc.want)
			}
		})
	}
	if got := registryIDs(d); !slices.Equal(got, []peer.ID{reg.ID()}) {
		t.Errorf("registries after refusals = %v, want only [%s]", got, reg.ID())
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, netget.RegistriesFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after refusals: %v, want none written", netget.RegistriesFile, err)
	}
}

func TestRegistriesSurviveRestart(t *testing.T) {
	reg := registry(t)
	later := registry(t, reg)
	cfg := netget.Daemon()
	cfg.DataDir = t.TempDir()
	cfg.Host.ListenAddrs = loopback
	cfg.Bootstrap = []ma.Multiaddr{addrOf(t, reg)}
	d := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.AddRegistry(ctx, addrOf(t, later)); err != nil {
		t.Fatalf("add: %v", err)
	}
	d.Close()
	d2 := start(t, cfg)
	got := registryIDs(d2)
	slices.Sort(got)
	want := []peer.ID{reg.ID(), later.ID()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("registries after restart = %v, want %v", got, want)
	}
	if err := d2.RemoveRegistry(later.ID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	d2.Close()
	d3 := start(t, cfg)
	if got := registryIDs(d3); !slices.Equal(got, []peer.ID{reg.ID()}) {
		t.Errorf("registries after remove and restart = %v, want [%s]", got, reg.ID())
	}
}
