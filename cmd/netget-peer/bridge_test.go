package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netget/netget-peer/bridge"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/dht/dhttest"
)

// TestCLIShortBridgeToken: a --bridge-token shorter than bridge.MinTokenLen
// is a usage error before the node starts (no address is printed).
func TestCLIShortBridgeToken(t *testing.T) {
	stdout, stderr, code := runCLI(t, "registry", "--listen", loopback, "--identity", filepath.Join(t.TempDir(), "reg.key"),
		"--bridge", "127.0.0.1:0", "--bridge-token", "s3cret")
	if code != exitUsage || !strings.Contains(stderr, "--bridge-token: token too short: 6 bytes, want at least 16") ||
		!strings.Contains(stderr, "openssl rand -hex 16") || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want a usage error naming the token's length", code, stdout, stderr)
	}
}

// TestBridgeFloodSparesLibp2p: a flood of slow HTTP connections to the
// bridge takes at most --bridge-max-conns of the process's descriptors,
// closing the rest at accept, so that the node's libp2p side still serves
// finds; once the slow ones hit --bridge-header-timeout, pages get in again.
func TestBridgeFloodSparesLibp2p(t *testing.T) {
	nw := dhttest.New(t, dhttest.Options{Registries: 1, Nodes: 2})
	reg, provider, finder := nw.Registries[0], nw.Nodes[0], nw.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := provider.Publish(ctx, dht.Spec{Name: "DatabaseService"}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	metrics := prometheus.NewRegistry()
	const maxConns, flood = 20, 300
	url, _, _ := runBridge(t, reg, metrics, "--bridge", "127.0.0.1:0", "--bridge-max-conns", "20",
		"--bridge-max-conns-per-addr", "20", "--bridge-header-timeout", "1s")
	addr := strings.TrimPrefix(url, "http://")
	for i := range flood { // the attacker's bounded flood, from one process
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n")) // headers never end
	}
	waitFor(t, 30*time.Second, "the bridge to refuse the flood beyond its cap", func() bool {
		return gathered(t, metrics, "netget_bridge_refusals_total")[string(bridge.ReasonAddrConns)] >= flood-maxConns
	})
	if held := gathered(t, metrics, "netget_bridge_conns")[""]; held > maxConns {
		t.Fatalf("the bridge holds %v connections, cap %d", held, maxConns)
	}
	res, err := finder.FindAll(ctx, "DatabaseService", dht.FindOptions{Limit: 1, Timeout: 10 * time.Second})
	if err != nil || len(res) != 1 || res[0].Record.Peer != provider.Host().ID() {
		t.Fatalf("libp2p find during the flood: %v, %v; want the provider", res, err)
	}
	waitFor(t, 20*time.Second, "the slow connections to time out", func() bool {
		return gathered(t, metrics, "netget_bridge_conns")[""] == 0
	})
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+bridge.PathWS,
		&websocket.DialOptions{Subprotocols: []string{bridge.Subprotocol}})
	if err != nil {
		t.Fatalf("a page after the flood: %v", err)
	}
	ws.CloseNow()
}
