package main

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"
	"testing"
)

// What a new user hits (issue 12), each through the binary.

// runWith runs netget-peer to completion with environment environ.
func runWith(t *testing.T, environ []string, args ...string) (string, string, int) {
	t.Helper()
	c := startWith(t, environ, args...)
	var out []string
	for l := range c.lines {
		out = append(out, l)
	}
	code := c.wait(t)
	return strings.Join(out, "\n"), c.stderr.String(), code
}

// TestCLINetworkMismatch: a find on the default network through a devnet
// registry fails at once, naming both networks and the flag that fixes it.
func TestCLINetworkMismatch(t *testing.T) {
	reg := start(t, "registry", "--network", "devnet", "--listen", loopback, "--identity", filepath.Join(t.TempDir(), "reg.key"))
	boot := reg.line(t, "registry address", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
	_, stderr, code := runCLI(t, "find", "DatabaseService", "--bootstrap", boot, "--timeout", "1h")
	if code != exitUsage || !strings.Contains(stderr, "speaks network devnet, not development (pass --network devnet)") ||
		strings.Contains(stderr, "routing table is empty") {
		t.Fatalf("find on the wrong network: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCLIProvideInputs: one TTL rule (1s to 24h) and metadata taken whole:
// commas kept, a key given twice refused.
func TestCLIProvideInputs(t *testing.T) {
	dead := deadAddr(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"ttl 1ms", []string{"--ttl", "1ms"}, "ttl 1ms: want between 1s and 24h0m0s"},
		{"ttl 0", []string{"--ttl", "0s"}, "want between 1s"},
		{"ttl not a duration", []string{"--ttl", "90"}, `--ttl "90": want a Go duration such as 90m`},
		{"duplicate meta", []string{"--meta", "k=1", "--meta", "k=2"}, `key "k" given twice`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"provide", "DatabaseService", "-b", dead}, tt.args...)
			out, stderr, code := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) || out != "" {
				t.Fatalf("%v: exit %d, out %q, stderr %q; want exit 2 and %q", args, code, out, stderr, tt.want)
			}
		})
	}
	boot := startRegistry(t)
	prov := start(t, "provide", "DatabaseService", "-b", boot, "--listen", loopback, "--json",
		"--meta", "tags=a,b", "--meta", "url=http://x/?a=1,2")
	prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	out, stderr, code := runCLI(t, "find", "DatabaseService", "-b", boot, "--json", "--limit", "1")
	var got findResult
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("find: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	if want := map[string]string{"tags": "a,b", "url": "http://x/?a=1,2"}; !maps.Equal(got.Meta, want) {
		t.Fatalf("meta: got %v, want %v", got.Meta, want)
	}
}

// TestCLIFindSaysWhy: a find whose search ended says so, not "within 1h";
// a timeout that passes while joining blames the timeout, not the
// bootstrap peer; a result from a bootstrap peer that is not a registry
// is not labelled registry.
func TestCLIFindSaysWhy(t *testing.T) {
	boot := startRegistry(t)
	_, stderr, code := runCLI(t, "find", "NoSuchService", "-b", boot, "--timeout", "1h")
	if code != exitFailure || !strings.Contains(stderr, "the search ended after") || strings.Contains(stderr, "within") {
		t.Fatalf("find of nothing: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCLI(t, "find", "NoSuchService", "-b", boot, "--timeout", "1ms")
	if code != exitFailure || !strings.Contains(stderr, "--timeout 1ms passed while joining the network") ||
		strings.HasPrefix(stderr, "netget-peer: no bootstrap peer reachable") {
		t.Fatalf("find --timeout 1ms: exit %d, stderr %q", code, stderr)
	}

	prov := start(t, "provide", "DatabaseService", "-b", boot, "--listen", loopback, "--json")
	var ev struct {
		Peer  string
		Addrs []string
	}
	l := prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev.Addrs) == 0 {
		t.Fatalf("provide --json line %q: %v", l, err)
	}
	out, stderr, code := runCLI(t, "find", "DatabaseService", "-b", ev.Addrs[0]+"/p2p/"+ev.Peer, "--json", "--limit", "1")
	var got findResult
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("find through a provider: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	if got.Source == "registry" {
		t.Fatalf("a result from a bootstrap peer that is no registry is labelled %q", got.Source)
	}
	out, stderr, code = runCLI(t, "find", "DatabaseService", "-b", boot, "--json", "--limit", "1")
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Source != "registry" {
		t.Fatalf("find through the registry: exit %d, source %q, stderr:\n%s", code, got.Source, stderr)
	}
}

// TestCLIDefaultDataDirLocked: two foreground providers on the default
// data dir would run with one peer ID; the second is refused, naming the
// fix.
func TestCLIDefaultDataDirLocked(t *testing.T) {
	boot := startRegistry(t)
	home := env(t)
	first := startWith(t, home, "provide", "DatabaseService", "-b", boot, "--listen", loopback)
	first.line(t, "published", func(l string) bool { return strings.HasPrefix(l, "published") })
	_, stderr, code := runWith(t, home, "provide", "CacheService", "-b", boot, "--listen", loopback)
	if code != exitFailure || !strings.Contains(stderr, "already running") || !strings.Contains(stderr, "--data-dir") {
		t.Fatalf("second provider on the default data dir: exit %d, stderr %q", code, stderr)
	}
}

// TestCLIHelpAndBareStart: help, --version and `help` work; --help shows
// --bootstrap's environment variable and the data dir's default; a bare
// netget-peer with $NETGET_BOOTSTRAP set says first what it is doing.
func TestCLIHelpAndBareStart(t *testing.T) {
	environ := env(t)
	home := strings.TrimPrefix(environ[len(environ)-1], "NETGET_HOME=")
	out, _, code := runWith(t, environ, "--help")
	if code != 0 || !strings.Contains(out, "[$NETGET_BOOTSTRAP]") || !strings.Contains(out, "(default: "+home) {
		t.Fatalf("--help: exit %d, want $NETGET_BOOTSTRAP and the data dir %s:\n%s", code, home, out)
	}
	out, _, code = runCLI(t, "help")
	if code != 0 || !strings.Contains(out, "COMMANDS:") {
		t.Fatalf("help: exit %d:\n%s", code, out)
	}
	out, _, code = runCLI(t, "--version")
	if code != 0 || !strings.Contains(out, "netget-peer") || !strings.Contains(out, "go-libp2p") {
		t.Fatalf("--version: exit %d: %q", code, out)
	}
	_, stderr, _ := runWith(t, append(environ, "NETGET_BOOTSTRAP="+deadAddr(t)), "--listen", loopback)
	first := strings.SplitN(stderr, "\n", 2)[0]
	if !strings.Contains(first, "no command given, so running a node") || !strings.Contains(stderr, "$NETGET_BOOTSTRAP") ||
		!strings.Contains(stderr, "listening on "+loopback) {
		t.Fatalf("bare netget-peer: stderr does not start by saying what it does:\n%s", stderr)
	}
}
