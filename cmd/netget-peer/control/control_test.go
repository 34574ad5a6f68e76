package control

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
	"github.com/netget/netget-peer/p2p/p2ptest"
	"github.com/netget/netget-peer/record"
)

// shortDir returns a fresh 0700 directory whose socket path fits a Unix
// socket, whatever TMPDIR or the test's name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ng")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if len(SocketPath(dir)) > maxSocketPath-8 {
		t.Fatalf("temp dir %s is too long for a Unix socket; set a shorter TMPDIR", dir)
	}
	return dir
}

// serve starts a server for node on dir and returns a client for it and a
// stop function, which ends Serve and waits for it (also run at cleanup).
func serve(t *testing.T, node Node, dir string, configure func(*Config)) (*Client, func()) {
	t.Helper()
	cfg := DefaultConfig(dir)
	cfg.DHTMode = "server"
	if configure != nil {
		configure(&cfg)
	}
	srv, err := NewServer(node, cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(stop)
	c, err := Dial(ctx, dir)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, stop
}

// waitFor polls cond until it holds, failing after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// daemonNode starts a node as the daemon runs one (netget.Service on
// 127.0.0.1), closed at cleanup: joined through net's registries and using
// them for the fast path, or alone when net is nil. key, if set, is its
// identity.
func daemonNode(t *testing.T, net *dhttest.Network, key crypto.PrivKey) *netget.Node {
	t.Helper()
	cfg := netget.Service()
	cfg.Host.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Identity = key
	var regs []*dht.Node
	if net != nil {
		regs = net.Registries
	}
	cfg.RequireBootstrap = len(regs) > 0
	for _, r := range regs {
		addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: r.Host().ID(), Addrs: r.Host().Addrs()})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Bootstrap = append(cfg.Bootstrap, addrs[0])
	}
	ctx := ctxT(t)
	n, err := netget.New(ctx, cfg)
	if err != nil {
		t.Fatalf("netget.New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	for _, r := range regs {
		n.DHT().AddRegistry(r.Host().ID())
	}
	if len(regs) > 0 {
		if err := n.DHT().Ready(ctx); err != nil {
			t.Fatalf("daemon node never joined: %v", err)
		}
		_ = n.DHT().Refresh(ctx) // best effort: a partial table still routes
	}
	return n
}

// findFrom waits for the background spread of publisher's records, then
// finds name from a fresh client node joined to the network's registries,
// as the CLI's find does, and returns the results' metadata by peer.
func findFrom(t *testing.T, net *dhttest.Network, publisher *dht.Node, name string) map[string]map[string]string {
	t.Helper()
	ctx := ctxT(t)
	if err := publisher.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	finder := dhttest.NewNode(t, "development", dht.ModeClient, nil)
	for _, r := range net.Registries {
		p2ptest.Connect(t, finder.Host(), r.Host())
		finder.AddRegistry(r.Host().ID())
	}
	rs, err := finder.FindAll(ctx, name, dht.FindOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	out := make(map[string]map[string]string)
	for _, r := range rs {
		out[r.Record.Peer.String()] = r.Record.Meta
	}
	return out
}

func TestControlRoundTrip(t *testing.T) {
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 1})
	daemon := daemonNode(t, net, nil)
	dir := shortDir(t)
	c, _ := serve(t, daemon, dir, nil)
	ctx := ctxT(t)
	self := daemon.ID().String()

	resp, err := c.Provide(ctx, ProvideRequest{Name: "DatabaseService", Meta: map[string]string{"region": "eu"}, TTL: Duration(time.Hour)})
	if err != nil {
		t.Fatalf("Provide: %v", err)
	}
	if s := resp.Service; s.Name != "DatabaseService" || s.Peer.String() != self || s.Seq == 0 || s.Withdrawn {
		t.Fatalf("Provide: got %+v", s)
	}
	if got := findFrom(t, net, daemon.DHT(), "DatabaseService"); !maps.Equal(got[self], map[string]string{"region": "eu"}) {
		t.Fatalf("find from another node: got %v, want %s with region=eu", got, self)
	}

	checkStatus(t, c, net, self, dir, ServiceStatus{Name: "DatabaseService", Meta: map[string]string{"region": "eu"},
		TTL: Duration(time.Hour), Seq: resp.Service.Seq, PublishedAt: resp.Service.IssuedAt.UTC(), ExpiresAt: resp.Service.ExpiresAt.UTC()})

	// Providing again replaces the loop: new metadata, a higher seq.
	resp2, err := c.Provide(ctx, ProvideRequest{Name: "databaseservice", Meta: map[string]string{"region": "us"}})
	if err != nil || resp2.Service.Seq <= resp.Service.Seq {
		t.Fatalf("Provide again: %+v, %v", resp2, err)
	}
	if st, _ := c.Status(ctx); len(st.Services) != 1 || st.Services[0].Meta["region"] != "us" || st.Services[0].TTL != Duration(dht.DefaultTTL) {
		t.Fatalf("Status after re-provide: %+v", st.Services)
	}
	if got := findFrom(t, net, daemon.DHT(), "DatabaseService"); got[self]["region"] != "us" {
		t.Fatalf("find after re-provide: got %v, want region=us", got)
	}

	un, err := c.Unprovide(ctx, UnprovideRequest{Name: "DatabaseService"})
	if err != nil || !un.WasProvided || !un.Service.Withdrawn {
		t.Fatalf("Unprovide: %+v, %v", un, err)
	}
	if got := findFrom(t, net, daemon.DHT(), "DatabaseService"); len(got) != 0 {
		t.Fatalf("find after unprovide: got %v, want none", got)
	}
	if st, _ := c.Status(ctx); len(st.Services) != 0 {
		t.Fatalf("Status after unprovide: %+v", st.Services)
	}
	if specs, err := loadServices(filepath.Join(dir, ServicesName)); err != nil || len(specs) != 0 {
		t.Fatalf("services.json after unprovide: %v, %v", specs, err)
	}
	// Unproviding what it does not provide still publishes a tombstone.
	if un, err := c.Unprovide(ctx, UnprovideRequest{Name: "Elsewhere"}); err != nil || un.WasProvided || !un.Service.Withdrawn {
		t.Fatalf("Unprovide of an unknown name: %+v, %v", un, err)
	}
}

// checkStatus checks the daemon's status: who it is, and that it
// provides one service, want.
func checkStatus(t *testing.T, c *Client, net *dhttest.Network, self, dir string, want ServiceStatus) {
	t.Helper()
	st, err := c.Status(ctxT(t))
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Peer != self || st.Network != "development" || st.DHTMode != "server" || st.RoutingTable == 0 || st.DataDir != dir {
		t.Fatalf("Status: got %+v", st)
	}
	if !slices.Contains(st.Registries, net.Registries[0].Host().ID().String()) {
		t.Errorf("Status registries: got %v, want the registry", st.Registries)
	}
	if len(st.Addrs) == 0 || !strings.HasSuffix(st.Addrs[0], "/p2p/"+self) {
		t.Errorf("Status addrs: got %v, want full /p2p addrs", st.Addrs)
	}
	if len(st.Services) != 1 || !equalStatus(st.Services[0], want) {
		t.Fatalf("Status services: got %+v, want [%+v]", st.Services, want)
	}
}

// TestControlFind: the daemon finds what others provide and streams each
// verified result.
func TestControlFind(t *testing.T) {
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 3})
	c, _ := serve(t, daemonNode(t, net, nil), shortDir(t), nil)
	ctx := ctxT(t)
	for _, n := range net.Nodes[1:] {
		if _, err := n.Publish(ctx, dht.Spec{Name: "CacheService", Meta: map[string]string{"engine": "redis"}}); err != nil {
			t.Fatal(err)
		}
	}
	var found []Result
	for r, err := range c.Find(ctx, FindRequest{Name: "CacheService", Timeout: Duration(5 * time.Second)}) {
		if err != nil {
			t.Fatalf("Find: %v", err)
		}
		found = append(found, r)
	}
	peers := map[string]bool{}
	for _, r := range found {
		if r.Record.Meta["engine"] != "redis" || r.Source == "" || r.Elapsed <= 0 {
			t.Errorf("Find result: got %+v (source %q, elapsed %s)", r.Record, r.Source, r.Elapsed)
		}
		peers[r.Record.Peer] = true
	}
	if len(found) != 2 || !peers[net.Nodes[1].Host().ID().String()] || !peers[net.Nodes[2].Host().ID().String()] {
		t.Fatalf("Find: got %d results from %v, want one from each provider", len(found), peers)
	}
	if n, err := drain(c.Find(ctx, FindRequest{Name: "CacheService", Limit: 1})); n != 1 || err != nil {
		t.Fatalf("Find with limit 1: got %d results, %v", n, err)
	}
	// Stopping the iteration early ends the call cleanly.
	for range c.Find(ctx, FindRequest{Name: "CacheService"}) {
		break
	}
}

func equalStatus(a, b ServiceStatus) bool {
	return a.Name == b.Name && maps.Equal(a.Meta, b.Meta) && a.TTL == b.TTL && a.Seq == b.Seq &&
		a.PublishedAt.Equal(b.PublishedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.LastError == b.LastError
}

func TestControlRestore(t *testing.T) {
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 1})
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	daemon := daemonNode(t, net, key)
	self := daemon.ID().String()
	dir := shortDir(t)
	c, stop := serve(t, daemon, dir, nil)
	ctx := ctxT(t)
	meta := map[string]string{"engine": "postgres"}
	if _, err := c.Provide(ctx, ProvideRequest{Name: "DatabaseService", Meta: meta, TTL: Duration(10 * time.Minute)}); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	stop()
	daemon.Close() // as the daemon does after Serve

	// Shutdown withdrew the service but kept it in services.json, 0600.
	path := filepath.Join(dir, ServicesName)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("services.json: %v, mode %v; want 0600", err, fi.Mode())
	}
	specs, err := loadServices(path)
	want := []dht.Spec{{Name: "DatabaseService", Meta: meta, TTL: 10 * time.Minute}}
	if err != nil || !slices.EqualFunc(specs, want, equalSpec) {
		t.Fatalf("services.json: got %+v, %v; want %+v", specs, err, want)
	}
	if _, err := os.Stat(SocketPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after shutdown: %v, want it removed", err)
	}
	if got := findFrom(t, net, daemon.DHT(), "DatabaseService"); len(got) != 0 {
		t.Fatalf("find after shutdown: got %v, want none (withdrawn)", got)
	}

	// A new daemon (same identity) on the same data dir provides it again.
	daemon = daemonNode(t, net, key)
	c, _ = serve(t, daemon, dir, nil)
	waitFor(t, "the saved service to be published again", func() bool {
		st, err := c.Status(ctx)
		return err == nil && len(st.Services) == 1 && st.Services[0].Seq != 0
	})
	if got := findFrom(t, net, daemon.DHT(), "DatabaseService"); !maps.Equal(got[self], meta) {
		t.Fatalf("find after restart: got %v, want %s with %v", got, self, meta)
	}
}

func equalSpec(a, b dht.Spec) bool {
	return a.Name == b.Name && maps.Equal(a.Meta, b.Meta) && a.TTL == b.TTL
}

// TestControlNotReady: a daemon that never joined refuses provide and
// find with not_ready, and does not keep the service.
func TestControlNotReady(t *testing.T) {
	alone := daemonNode(t, nil, nil)
	dir := shortDir(t)
	c, _ := serve(t, alone, dir, func(cfg *Config) { cfg.PublishTimeout = 200 * time.Millisecond })
	ctx := ctxT(t)
	_, err := c.Provide(ctx, ProvideRequest{Name: "DatabaseService"})
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 || e.Code != CodeNotReady {
		t.Fatalf("Provide: got %v, want 503 not_ready", err)
	}
	if st, err := c.Status(ctx); err != nil || len(st.Services) != 0 {
		t.Fatalf("Status: %+v, %v; want no services", st, err)
	}
	if n, err := drain(c.Find(ctx, FindRequest{Name: "DatabaseService", Timeout: Duration(200 * time.Millisecond)})); n != 0 || !errors.As(err, &e) || e.Code != CodeNotReady {
		t.Fatalf("Find: got %d results, %v; want not_ready", n, err)
	}
}

// drain counts a find's results and returns the error it ended with.
func drain(seq iter.Seq2[Result, error]) (int, error) {
	n := 0
	for _, err := range seq {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func TestServicesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ServicesName)
	specs := []dht.Spec{{Name: "A", TTL: time.Hour}, {Name: "B", Meta: map[string]string{"k": "v"}, TTL: 90 * time.Second}}
	if err := saveServices(path, specs); err != nil {
		t.Fatal(err)
	}
	got, err := loadServices(path)
	if err != nil || !slices.EqualFunc(got, specs, equalSpec) {
		t.Fatalf("round trip: got %+v, %v", got, err)
	}
	if got, err := loadServices(filepath.Join(dir, "absent.json")); err != nil || got != nil {
		t.Fatalf("absent file: got %v, %v; want an empty set", got, err)
	}
	bad := []struct{ name, body string }{
		{"not json", "{"},
		{"unknown version", `{"version":2,"services":[]}`},
		{"bad name", `{"version":1,"services":[{"name":"a b","ttl":"1h"}]}`},
		{"bad ttl", `{"version":1,"services":[{"name":"A","ttl":"48h"}]}`},
		{"unknown field", `{"version":1,"services":[],"extra":1}`},
	}
	node := daemonNode(t, nil, nil)
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewServer(node, DefaultConfig(dir))
			if !errors.Is(err, ErrServicesFile) || !strings.Contains(err.Error(), path) {
				t.Fatalf("NewServer with %s: got %v, want ErrServicesFile naming %s", tt.body, err, path)
			}
		})
	}
}

func TestCheckSpec(t *testing.T) {
	many := make(map[string]string)
	for i := range record.MaxMetaPairs + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		name     string
		svc      string
		meta     map[string]string
		ttl      time.Duration
		wantCode string
	}{
		{"ok", "DatabaseService", map[string]string{"a": "b"}, time.Hour, ""},
		{"default ttl", "DatabaseService", nil, 0, ""},
		{"bad name", "Database Service", nil, 0, CodeInvalidName},
		{"empty name", "", nil, 0, CodeInvalidName},
		{"ttl too long", "X", nil, 25 * time.Hour, CodeInvalidTTL},
		{"ttl negative", "X", nil, -time.Second, CodeInvalidTTL},
		{"too many pairs", "X", many, 0, CodeInvalidMeta},
		{"empty key", "X", map[string]string{"": "v"}, 0, CodeInvalidMeta},
		{"long value", "X", map[string]string{"k": strings.Repeat("v", record.MaxMetaValueLen+1)}, 0, CodeInvalidMeta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, e := checkSpec(tt.svc, tt.meta, Duration(tt.ttl))
			switch {
			case tt.wantCode == "" && e != nil:
				t.Fatalf("got %v, want ok", e)
			case tt.wantCode != "" && (e == nil || e.Code != tt.wantCode || e.Status != 400):
				t.Fatalf("got %+v, want 400 %s", e, tt.wantCode)
			case tt.wantCode == "" && spec.TTL == 0:
				t.Fatalf("got ttl 0, want a default")
			}
		})
	}
}

// TestControlConcurrent: concurrent provides and unprovides of the same
// names leave status and services.json in agreement.
func TestControlConcurrent(t *testing.T) {
	net := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 1})
	dir := shortDir(t)
	c, _ := serve(t, daemonNode(t, net, nil), dir, nil)
	ctx := ctxT(t)
	names := []string{"A", "B", "a", "b"} // A and a are one service
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := names[i%len(names)]
			var err error
			if i%3 == 2 {
				_, err = c.Unprovide(ctx, UnprovideRequest{Name: name})
			} else {
				_, err = c.Provide(ctx, ProvideRequest{Name: name, Meta: map[string]string{"i": fmt.Sprint(i)}})
			}
			var e *Error
			if err != nil && !(errors.As(err, &e) && e.Code == CodeConflict) {
				t.Errorf("request %d (%s): %v", i, name, err)
			}
		})
	}
	wg.Wait()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := loadServices(filepath.Join(dir, ServicesName))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != len(saved) || len(saved) > 2 {
		t.Fatalf("status %+v and services.json %+v disagree", st.Services, saved)
	}
	for i, s := range st.Services {
		if s.Name != saved[i].Name || !maps.Equal(s.Meta, saved[i].Meta) {
			t.Fatalf("status %+v and services.json %+v disagree", st.Services, saved)
		}
	}
}
