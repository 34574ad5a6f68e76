package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
)

// registryAt starts a registry child on data dir dir, listening on listen,
// and returns it with its printed 127.0.0.1 bootstrap address.
func registryAt(t *testing.T, dir, listen string, extra ...string) (*child, string) {
	t.Helper()
	reg := start(t, append([]string{"registry", "--data-dir", dir, "--listen", listen}, extra...)...)
	addr := reg.line(t, "registry address", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
	return reg, addr
}

// joinChild starts an in-process node that joins the registry child at
// addr and uses it as its registry.
func joinChild(t *testing.T, addr string) *dht.Node {
	t.Helper()
	ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	n := dhttest.NewNode(t, "development", dht.ModeServer, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Host().Connect(ctx, *ai); err != nil {
		t.Fatalf("connect to registry: %v", err)
	}
	n.AddRegistry(ai.ID)
	return n
}

// tcpPort returns the TCP port of a multiaddr.
func tcpPort(t *testing.T, addr string) string {
	t.Helper()
	p, err := ma.StringCast(addr).ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLIRegistryRestart: a registry killed with SIGKILL and restarted on
// the same data dir serves the records of 20 providers, none republished,
// once its first health checks of them pass.
func TestCLIRegistryRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "registry")
	reg, addr := registryAt(t, dir, loopback)
	want := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 20 {
		p := joinChild(t, addr)
		meta := map[string]string{"i": strconv.Itoa(i)}
		if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", Meta: meta, TTL: time.Hour}); err != nil {
			t.Fatalf("provider %d: %v", i, err)
		}
		want[p.Host().ID().String()] = true
	}
	reg.cmd.Process.Signal(syscall.SIGKILL)
	reg.wait(t)

	metrics := freeAddr(t)
	_, addr2 := registryAt(t, dir, "/ip4/127.0.0.1/tcp/"+tcpPort(t, addr), "--metrics", metrics)
	if addr2 != addr {
		t.Fatalf("restarted registry is %s, want the same identity and address %s", addr2, addr)
	}
	// The restarted registry serves each record once its first check of
	// the provider has passed (one dial and ping each, at once).
	waitFor(t, 30*time.Second, "the restarted registry checks its providers", func() bool {
		v, _ := scrape(t, "http://"+metrics+"/metrics", `netget_providers{state="healthy"}`)
		return v == 20
	})
	out, stderr, code := runCLI(t, "find", "DatabaseService", "--bootstrap", addr2, "--json", "--timeout", "20s")
	if code != 0 {
		t.Fatalf("find after restart: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	got := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		var r findResult
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("find line %q: %v", l, err)
		}
		got[r.Peer] = true
	}
	if len(got) != 20 {
		t.Fatalf("find after restart: %d providers, want 20; stderr:\n%s", len(got), stderr)
	}
	for p := range want {
		if !got[p] {
			t.Fatalf("provider %s missing after restart", p)
		}
	}
}

// scrape returns the value of an unlabelled gauge from a /metrics page.
func scrape(t *testing.T, url, metric string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if ok && name == metric {
			v, err := strconv.ParseFloat(val, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// freeAddr returns a 127.0.0.1 host:port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l := busyAddr(t)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// busyAddr returns a listener on 127.0.0.1, closed when t ends.
func busyAddr(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestCLIHealth: a stopped provider is hidden within interval × failures,
// served again when it resumes, and deregistered after --deregister-after,
// its record gone from the registry's datastore (its metrics say so).
func TestCLIHealth(t *testing.T) {
	metrics := freeAddr(t)
	_, addr := registryAt(t, filepath.Join(t.TempDir(), "reg"), loopback, "--metrics", metrics,
		"--health-interval", "200ms", "--health-failures", "2", "--deregister-after", "6s")
	prov := start(t, "provide", "DatabaseService", "--bootstrap", addr, "--listen", loopback, "--ttl", "10m", "--json")
	prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	found := func() bool {
		_, _, code := runCLI(t, "find", "DatabaseService", "--bootstrap", addr, "--timeout", "1s")
		return code == 0
	}
	stored := func() float64 {
		v, ok := scrape(t, "http://"+metrics+"/metrics", "netget_records_stored")
		if !ok {
			t.Fatal("registry metrics have no netget_records_stored")
		}
		return v
	}
	if !found() {
		t.Fatalf("find before the provider stopped found nothing; provider stderr:\n%s", prov.stderr)
	}
	unhealthy := func() bool {
		v, _ := scrape(t, "http://"+metrics+"/metrics", `netget_providers{state="unhealthy"}`)
		return v == 1
	}
	prov.cmd.Process.Signal(syscall.SIGSTOP)
	waitFor(t, 30*time.Second, "the registry marks the stopped provider unhealthy", unhealthy)
	if found() {
		t.Fatal("find returned the unhealthy provider")
	}
	if stored() != 1 {
		t.Fatal("the stopped provider's record is gone already; want it hidden until --deregister-after")
	}
	prov.cmd.Process.Signal(syscall.SIGCONT)
	waitFor(t, 30*time.Second, "the resumed provider is served again", found)
	prov.cmd.Process.Signal(syscall.SIGSTOP)
	waitFor(t, 30*time.Second, "the stopped provider is deregistered", func() bool { return stored() == 0 })
	if found() {
		t.Fatal("find returned a deregistered provider")
	}
	// /healthz answers with the registry's identity.
	resp, err := http.Get("http://" + metrics + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthz
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Status != "ok" || !strings.HasSuffix(addr, h.Peer) {
		t.Fatalf("/healthz: %+v, %v", h, err)
	}
}

// waitFor polls cond until it holds, failing t after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

// TestCLIBadDataDir: a corrupt datastore, a data dir already in use, a bad
// identity file and a bad config file each fail with a clear error naming
// the path, never a panic.
func TestCLIBadDataDir(t *testing.T) {
	corrupt := filepath.Join(t.TempDir(), "reg")
	if err := os.MkdirAll(filepath.Join(corrupt, "datastore"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(corrupt, "datastore", "CURRENT"), []byte("MANIFEST-garbage\n"), 0o600)
	busy := filepath.Join(t.TempDir(), "busy")
	registryAt(t, busy, loopback)
	garbageKey := filepath.Join(t.TempDir(), "garbage.key")
	os.WriteFile(garbageKey, []byte("not a key"), 0o600)
	keyDir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "netget.toml")
	os.WriteFile(conf, []byte("network = \"production\"\nhealth-intervall = \"1s\"\n"), 0o600)
	dead := deadAddr(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"corrupt datastore", []string{"registry", "--data-dir", corrupt, "--listen", loopback}, filepath.Join(corrupt, "datastore")},
		{"data dir in use", []string{"registry", "--data-dir", busy, "--listen", loopback}, "already running"},
		{"garbage identity", []string{"provide", "X", "--identity", garbageKey, "-b", dead}, garbageKey},
		{"identity is a directory", []string{"provide", "X", "--identity", keyDir, "-b", dead}, keyDir},
		{"unknown config key", []string{"registry", "--config", conf}, `unknown key "health-intervall"`},
		{"missing config", []string{"registry", "--config", conf + ".nope"}, "no such file"},
		{"metrics port in use", []string{"registry", "--listen", loopback, "--metrics", busyAddr(t).Addr().String()}, "--metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, tt.args...)
			if code == 0 || !strings.Contains(stderr, tt.wantErr) || strings.Contains(stderr, "panic") {
				t.Fatalf("netget-peer %v: exit %d, stderr %q; want a failure naming %q", tt.args, code, stderr, tt.wantErr)
			}
			if out != "" {
				t.Fatalf("stdout should be empty on error, got %q", out)
			}
		})
	}
}

// TestCLIConfigFile: keys of a --config file set flags; flags win.
func TestCLIConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	regConf := write("registry.toml", fmt.Sprintf("network = \"staging\"\nlisten = [%q]\ndata-dir = %q\nhealth-interval = \"1m\"\nlog-format = \"json\"\n",
		loopback, filepath.Join(dir, "data")))
	findConf := write("find.toml", "network = \"staging\"\ntimeout = \"3s\"\n")
	reg := start(t, "registry", "--config", regConf)
	addr := reg.line(t, "registry address", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
	if _, err := os.Stat(filepath.Join(dir, "data", "identity.key")); err != nil {
		t.Fatalf("config data-dir not used: %v", err)
	}
	waitFor(t, 10*time.Second, "a JSON log line", func() bool {
		return strings.Contains(reg.stderr.String(), `"msg":"registry running`)
	})
	// The file puts find on staging, where the registry is.
	_, stderr, code := runCLI(t, "find", "X", "-b", addr, "--config", findConf)
	if code != 1 || !strings.Contains(stderr, `no provider of X found on network "staging"`) || !strings.Contains(stderr, "--timeout 3s") {
		t.Fatalf("find with a config file: exit %d, stderr %s", code, stderr)
	}
	// A flag wins over the file: development cannot join a staging registry.
	_, stderr, code = runCLI(t, "find", "X", "-b", addr, "--config", findConf, "--network", "development")
	if code != exitUsage || !strings.Contains(stderr, "speaks network staging, not development") {
		t.Fatalf("flag over config: exit %d, stderr %s", code, stderr)
	}
}

// TestExampleConfig: the shipped systemd example config only uses flags
// that exist.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "scripts", "systemd", "registry.toml")
	cfg, err := loadConfig(path, flagNames(newApp(io.Discard, io.Discard)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg["network"] != "production" || cfg["health-interval"] != "30s" {
		t.Fatalf("example config read as %v", cfg)
	}
}

// TestCLIFindPaths: find reports which path brought each result: the
// registry it joined through, or, with --no-fast-path, the DHT.
func TestCLIFindPaths(t *testing.T) {
	boot := startRegistry(t)
	prov := start(t, "provide", "CacheService", "--bootstrap", boot, "--listen", loopback, "--json")
	prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"registry"}},
		{[]string{"--no-fast-path"}, []string{"near", "walk", "provider", "dht"}},
	} {
		args := append([]string{"find", "CacheService", "--bootstrap", boot, "--json", "--limit", "1"}, tt.args...)
		out, stderr, code := runCLI(t, args...)
		var r findResult
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("netget-peer %v: exit %d, out %q, stderr:\n%s", args, code, out, stderr)
		}
		if !slices.Contains(tt.want, r.Source) {
			t.Fatalf("netget-peer %v: source %q, want one of %v", args, r.Source, tt.want)
		}
	}
}

// TestCLIStoreLimits: a registry started with --max-records-per-key 3
// keeps three records of a provider that publishes ten services; a limit
// below 1 is a usage error.
func TestCLIStoreLimits(t *testing.T) {
	_, addr := registryAt(t, t.TempDir(), loopback, "--max-records-per-key", "3")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flood := joinChild(t, addr)
	for i := range 10 {
		// Past the registry's quota a publish falls back to the DHT walk,
		// which reaches the same registry: the outcome is what it stores.
		_, _ = flood.Publish(ctx, dht.Spec{Name: fmt.Sprintf("Svc%d", i), TTL: time.Hour})
	}
	if err := flood.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	flood.Close()
	flood.Host().Close() // the registry is now the only holder
	finder := joinChild(t, addr)
	found := 0
	for i := range 10 {
		got, err := finder.FindAll(ctx, fmt.Sprintf("Svc%d", i), dht.FindOptions{Limit: 1, Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		found += len(got)
	}
	if found != 3 {
		t.Fatalf("registry with --max-records-per-key 3 serves %d of one provider's 10 services, want 3", found)
	}
	_, stderr, code := runCLI(t, "registry", "--listen", loopback, "--data-dir", t.TempDir(), "--max-records-per-key", "0")
	if code != 2 || !strings.Contains(stderr, "--max-records-per-key") {
		t.Fatalf("--max-records-per-key 0: exit %d, stderr %q; want 2 naming the flag", code, stderr)
	}
}
