package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netget/netget-peer/dht"
)

// TestCLIRegistrySyncAfterWipe: two registry processes, B joined to A; ten
// providers publish through A. B is SIGKILLed, its data dir wiped but for
// its identity key, and restarted on the same address: with no provider
// republishing, it catches up from A by reconciliation, serves every
// record as a registry, and `status --json` says so.
func TestCLIRegistrySyncAfterWipe(t *testing.T) {
	dirA, dirB := shortDataDir(t), shortDataDir(t)
	_, addrA := registryAt(t, dirA, loopback, "--sync-interval", "2s")
	b, addrB := registryAt(t, dirB, loopback, "--bootstrap", addrA, "--sync-interval", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := map[string]bool{}
	for i := range 10 {
		p := joinChild(t, addrA)
		if _, err := p.Publish(ctx, dht.Spec{Name: "DatabaseService", Meta: map[string]string{"i": strconv.Itoa(i)}, TTL: time.Hour}); err != nil {
			t.Fatalf("provider %d: %v", i, err)
		}
		want[p.Host().ID().String()] = true
	}
	waitFor(t, 30*time.Second, "B holds every record", func() bool { return daemonStatus(t, dirB).StoredRecords >= 10 })

	b.cmd.Process.Signal(syscall.SIGKILL)
	b.wait(t)
	entries, err := os.ReadDir(dirB)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "identity.key" {
			if err := os.RemoveAll(filepath.Join(dirB, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	b2, addrB2 := registryAt(t, dirB, "/ip4/127.0.0.1/tcp/"+tcpPort(t, addrB), "--bootstrap", addrA, "--sync-interval", "2s",
		"--log-level", "debug")
	if addrB2 != addrB {
		t.Fatalf("restarted registry is %s, want the same identity and address %s", addrB2, addrB)
	}
	var st = daemonStatus(t, dirB)
	deadline, tick := time.After(60*time.Second), time.NewTicker(50*time.Millisecond)
	defer tick.Stop()
	// Every record is back, and sync brought them: one may also come back
	// through the DHT, where the providers' first publication still spreads.
	for st.Sync == nil || st.Sync.Fetched == 0 || st.StoredRecords < 10 {
		select {
		case <-deadline:
			t.Fatalf("the wiped registry did not catch up by sync: %d records, sync %+v; its log:\n%s", st.StoredRecords, st.Sync, b2.stderr)
		case <-tick.C:
		}
		st = daemonStatus(t, dirB)
	}
	if st.StoredRecords < 10 || !slices.Contains(st.Sync.Peers, peerOf(t, addrA)) || st.Sync.LastRound.IsZero() {
		t.Fatalf("status of the wiped registry: %d records, sync %+v; want 10, A among its peers, a last round", st.StoredRecords, st.Sync)
	}
	// It serves them itself (its own health checks passed): a finder that
	// joins B alone gets all ten from the registry.
	waitFor(t, 30*time.Second, "B serves all ten", func() bool {
		out, _, code := runCLI(t, "find", "DatabaseService", "--bootstrap", addrB, "--json", "--timeout", "5s")
		got := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			var r findResult
			if json.Unmarshal([]byte(l), &r) == nil && r.Source == "registry" && want[r.Peer] {
				got[r.Peer] = true
			}
		}
		return code == 0 && len(got) == len(want)
	})
	out, stderr, code := runCLI(t, "status", "--data-dir", dirB)
	if code != 0 || !strings.Contains(out, "sync ") || !strings.Contains(out, peerOf(t, addrA)) {
		t.Fatalf("status of the wiped registry: exit %d, out:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

// peerOf returns the peer ID of a /p2p/ multiaddr.
func peerOf(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndex(addr, "/p2p/")
	if i < 0 {
		t.Fatalf("%s has no /p2p/", addr)
	}
	return addr[i+len("/p2p/"):]
}
