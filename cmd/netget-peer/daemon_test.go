package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netget/netget-peer/cmd/netget-peer/control"
)

// shortDataDir returns a fresh data dir whose control socket path fits a
// Unix socket (t.TempDir() can be too long), removed when the test ends.
func shortDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ngd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if p := control.SocketPath(dir); len(p) > 100 {
		t.Fatalf("socket path %s is too long; set a shorter TMPDIR", p)
	}
	return dir
}

// startDaemon starts a daemon (args select the form) and waits for its
// first address line, printed once its control socket is up.
func startDaemon(t *testing.T, args ...string) *child {
	t.Helper()
	d := start(t, args...)
	d.line(t, "daemon address", func(l string) bool { return strings.HasPrefix(l, "/ip4/127.0.0.1/") })
	return d
}

// daemonStatus runs `status --json` and decodes it.
func daemonStatus(t *testing.T, dir string) control.Status {
	t.Helper()
	out, stderr, code := runCLI(t, "status", "--data-dir", dir, "--json")
	var st control.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	return st
}

// findOne runs find in a process of its own (a fresh NETGET_HOME: no
// daemon) and returns its first result.
func findOne(t *testing.T, boot, name string) findResult {
	t.Helper()
	out, stderr, code := runCLI(t, "find", name, "--bootstrap", boot, "--json", "--timeout", "15s")
	var got findResult
	if code != 0 || json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &got) != nil {
		t.Fatalf("find %s: exit %d, out %q, stderr:\n%s", name, code, out, stderr)
	}
	return got
}

func TestDaemonControlAPI(t *testing.T) {
	boot := startRegistry(t)
	dir := shortDataDir(t)
	d := startDaemon(t, "daemon", "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)
	st := daemonStatus(t, dir)
	regID := boot[strings.LastIndex(boot, "/")+1:]
	if st.Peer == "" || st.Network != "development" || len(st.Registries) != 1 || st.Registries[0] != regID || len(st.Services) != 0 {
		t.Fatalf("status: got %+v, want a fresh daemon joined to %s", st, regID)
	}
	sock := control.SocketPath(dir)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, mode %v; want a socket, 0600", err, fi.Mode())
	}

	// provide via the daemon prints the publication and exits on its own.
	out, stderr, code := runCLI(t, "provide", "DatabaseService", "--data-dir", dir, "--meta", "k=v", "--json")
	var ev providerEvent
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || ev.Event != "published" || ev.Peer != st.Peer {
		t.Fatalf("provide via the daemon: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	if got := findOne(t, boot, "DatabaseService"); got.Peer != st.Peer || !maps.Equal(got.Meta, map[string]string{"k": "v"}) {
		t.Fatalf("find from another process: got %+v, want %s with k=v", got, st.Peer)
	}
	st = daemonStatus(t, dir)
	if len(st.Services) != 1 || st.Services[0].Name != "DatabaseService" || st.Services[0].Seq != ev.Seq || st.Services[0].Meta["k"] != "v" {
		t.Fatalf("status services: got %+v, want DatabaseService seq %d", st.Services, ev.Seq)
	}
	out, _, code = runCLI(t, "status", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, st.Peer) || !strings.Contains(out, "DatabaseService ttl=1h0m0s meta=k=v seq=") {
		t.Fatalf("status (text): exit %d, out:\n%s", code, out)
	}
	// find through the daemon prints what a find of its own would.
	out, stderr, code = runCLI(t, "find", "DatabaseService", "--data-dir", dir, "--json")
	var viaDaemon findResult
	if code != 0 || json.Unmarshal([]byte(out), &viaDaemon) != nil || viaDaemon.Peer != st.Peer || viaDaemon.Meta["k"] != "v" {
		t.Fatalf("find via the daemon: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}

	testSecondDaemon(t, boot, dir, st.Peer)
	out, stderr, code = runCLI(t, "unprovide", "DatabaseService", "--data-dir", dir, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || ev.Event != "withdrawn" || ev.Peer != st.Peer {
		t.Fatalf("unprovide via the daemon: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	out, stderr, code = runCLI(t, "find", "DatabaseService", "--bootstrap", boot, "--timeout", "3s")
	if code != 1 || out != "" || !strings.Contains(stderr, "no provider of DatabaseService found") {
		t.Fatalf("find after unprovide: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	testDaemonRestart(t, d, boot, dir, st.Peer)
}

// testSecondDaemon: a second daemon on the data dir refuses to start and
// leaves the first one serving.
func testSecondDaemon(t *testing.T, boot, dir, peer string) {
	_, stderr, code := runCLI(t, "daemon", "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)
	if code != exitFailure || !strings.Contains(stderr, "already running") {
		t.Fatalf("second daemon: exit %d, stderr:\n%s", code, stderr)
	}
	if st := daemonStatus(t, dir); st.Peer != peer {
		t.Fatalf("status after a second daemon tried: %+v", st)
	}
	if fi, err := os.Stat(control.SocketPath(dir)); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("control socket after a second daemon tried: %v", err)
	}
}

// testDaemonRestart: a service provided through the daemon survives its
// restart (SIGINT, then the bare form on the same data dir).
func testDaemonRestart(t *testing.T, d *child, boot, dir, peer string) {
	if _, stderr, code := runCLI(t, "provide", "DatabaseService", "--data-dir", dir, "--meta", "k=v2", "--ttl", "10m"); code != 0 {
		t.Fatalf("provide: exit %d, stderr:\n%s", code, stderr)
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	if code := d.wait(t); code != 0 {
		t.Fatalf("daemon after SIGINT: exit %d, stderr:\n%s", code, d.stderr)
	}
	if _, err := os.Stat(control.SocketPath(dir)); !os.IsNotExist(err) {
		t.Errorf("socket after shutdown: %v, want it removed", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, control.ServicesName))
	if fi, serr := os.Stat(filepath.Join(dir, control.ServicesName)); err != nil || serr != nil || fi.Mode().Perm() != 0o600 ||
		!strings.Contains(string(b), `"DatabaseService"`) {
		t.Fatalf("services.json after shutdown: %v, %q; want DatabaseService, mode 0600", err, b)
	}

	startDaemon(t, "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)
	cl := control.NewClient(dir)
	defer cl.Close()
	waitUntil(t, "the restarted daemon to publish the saved service", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := cl.Status(ctx)
		return err == nil && len(st.Services) == 1 && st.Services[0].Seq != 0
	})
	if got := findOne(t, boot, "DatabaseService"); got.Peer != peer || got.Meta["k"] != "v2" {
		t.Fatalf("find after restart: got %+v, want %s with k=v2", got, peer)
	}
}

// waitUntil polls cond until it holds, failing after 30 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
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

// TestUnprovideWithoutDaemon: a provider killed without withdrawing is
// withdrawn by `unprovide` with its identity, from a node of its own.
func TestUnprovideWithoutDaemon(t *testing.T) {
	boot := startRegistry(t)
	key := filepath.Join(t.TempDir(), "svc.key")
	prov := start(t, "provide", "CacheService", "--bootstrap", boot, "--listen", loopback, "--identity", key, "--json")
	l := prov.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	var pub providerEvent
	if err := json.Unmarshal([]byte(l), &pub); err != nil {
		t.Fatal(err)
	}
	prov.cmd.Process.Kill()
	prov.wait(t)
	if got := findOne(t, boot, "CacheService"); got.Peer != pub.Peer {
		t.Fatalf("find after SIGKILL: got %+v, want %s (its record outlives it)", got, pub.Peer)
	}

	out, stderr, code := runCLI(t, "unprovide", "CacheService", "--bootstrap", boot, "--listen", loopback, "--identity", key, "--json")
	var ev providerEvent
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || ev.Event != "withdrawn" || ev.Peer != pub.Peer || ev.Seq <= pub.Seq {
		t.Fatalf("unprovide: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}
	out, stderr, code = runCLI(t, "find", "CacheService", "--bootstrap", boot, "--timeout", "3s")
	if code != 1 || out != "" || !strings.Contains(stderr, "no provider of CacheService found") {
		t.Fatalf("find after unprovide: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}

	// Without a key there is nothing to withdraw.
	_, stderr, code = runCLI(t, "unprovide", "CacheService", "--bootstrap", boot, "--identity", filepath.Join(t.TempDir(), "none.key"))
	if code != exitFailure || !strings.Contains(stderr, "no identity key") {
		t.Fatalf("unprovide without a key: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestStatusWithoutDaemon(t *testing.T) {
	dir := shortDataDir(t)
	for _, args := range [][]string{{"status", "--data-dir", dir}, {"status", "--json", "--data-dir", dir}} {
		out, stderr, code := runCLI(t, args...)
		if code != exitFailure || out != "" || !strings.Contains(stderr, "no daemon running in "+dir) ||
			!strings.Contains(stderr, "netget-peer daemon --bootstrap ADDR") {
			t.Fatalf("%v: exit %d, out %q, stderr:\n%s", args, code, out, stderr)
		}
	}
	if _, stderr, code := runCLI(t, "status", "extra"); code != exitUsage {
		t.Fatalf("status extra: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestDaemonRefuses: a corrupt services.json stops the daemon with an
// error naming it; a daemon refuses requests for another network.
func TestDaemonRefuses(t *testing.T) {
	boot := startRegistry(t)
	dir := shortDataDir(t)
	path := filepath.Join(dir, control.ServicesName)
	if err := os.WriteFile(path, []byte(`{"version":1,"services":[{"name":"bad name!"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "daemon", "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)
	if code != exitFailure || out != "" || !strings.Contains(stderr, path) || !strings.Contains(stderr, "invalid services file") {
		t.Fatalf("daemon with a corrupt services.json: exit %d, out %q, stderr:\n%s", code, out, stderr)
	}

	dir = shortDataDir(t)
	startDaemon(t, "daemon", "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)
	for _, cmd := range []string{"find", "provide", "unprovide"} {
		_, stderr, code := runCLI(t, cmd, "DatabaseService", "--data-dir", dir, "--network", "production")
		if code != exitUsage || !strings.Contains(stderr, `on network "development", not "production"`) || !strings.Contains(stderr, "--no-daemon") {
			t.Fatalf("%s on another network: exit %d, stderr:\n%s", cmd, code, stderr)
		}
	}
}
