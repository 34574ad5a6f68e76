package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestCLIAllowProvider: find --allow-provider drops the records of
// providers not on its list, though the registry serves them, and keeps
// those on it.
func TestCLIAllowProvider(t *testing.T) {
	boot := startRegistry(t)
	prov := start(t, "provide", "DatabaseService", "--bootstrap", boot, "--listen", loopback, "--json", "--ttl", "10m")
	var published struct{ Peer string }
	l := prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	if err := json.Unmarshal([]byte(l), &published); err != nil {
		t.Fatalf("provide --json line %q: %v", l, err)
	}
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	stranger, _ := peer.IDFromPublicKey(pub)

	out, stderr, code := runCLI(t, "find", "DatabaseService", "--bootstrap", boot, "--timeout", "3s",
		"--allow-provider", "DatabaseService="+stranger.String())
	if code != 1 || out != "" || !strings.Contains(stderr, "no provider of DatabaseService found") {
		t.Fatalf("find allowing only a stranger: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	out, stderr, code = runCLI(t, "find", "DatabaseService", "--bootstrap", boot, "--timeout", "15s",
		"--allow-provider", stranger.String()+",DatabaseService="+published.Peer)
	if code != 0 || !strings.Contains(out, published.Peer) {
		t.Fatalf("find allowing the provider: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
}
