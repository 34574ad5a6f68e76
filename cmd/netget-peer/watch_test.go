package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netget/netget-peer/cmd/netget-peer/control"
)

// watchLine waits for the watcher's next --json event of type typ about
// peer, and decodes it.
func watchLine(t *testing.T, w *child, typ, peer string) control.WatchEvent {
	t.Helper()
	var ev control.WatchEvent
	w.line(t, typ+" of "+peer, func(l string) bool {
		ev = control.WatchEvent{}
		return json.Unmarshal([]byte(l), &ev) == nil && ev.Type == typ && ev.Peer == peer
	})
	return ev
}

// providedBy starts `provide NAME` and returns the child and its peer ID
// once it has published.
func providedBy(t *testing.T, boot, name string) (*child, string) {
	t.Helper()
	p := start(t, "provide", name, "--bootstrap", boot, "--listen", loopback, "--ttl", "10m", "--json")
	var ev providerEvent
	l := p.line(t, "published event", func(l string) bool { return strings.Contains(l, `"published"`) })
	if err := json.Unmarshal([]byte(l), &ev); err != nil {
		t.Fatalf("provide --json line %q: %v", l, err)
	}
	return p, ev.Peer
}

// TestCLIFindWatch: find --watch prints the providers, then one line per
// change the registry pushes: a new provider, a withdrawal (Ctrl-C of
// provide) and a provider killed with SIGKILL once the registry's health
// checks give up on it; Ctrl-C ends it with exit 0.
func TestCLIFindWatch(t *testing.T) {
	_, boot := registryAt(t, filepath.Join(t.TempDir(), "reg"), loopback,
		"--health-interval", "200ms", "--health-failures", "2", "--deregister-after", "1m")
	a, aPeer := providedBy(t, boot, "DatabaseService")
	w := start(t, "find", "DatabaseService", "--watch", "--json", "--bootstrap", boot, "--timeout", "15s")
	ev := watchLine(t, w, control.EventUpsert, aPeer)
	if ev.Record == nil || ev.Record.Service != "DatabaseService" || ev.Source != "watch" {
		t.Fatalf("upsert: %+v, want DatabaseService's record from the watch", ev)
	}
	b, bPeer := providedBy(t, boot, "DatabaseService")
	watchLine(t, w, control.EventUpsert, bPeer)

	a.cmd.Process.Signal(syscall.SIGINT)
	if ev := watchLine(t, w, control.EventRemove, aPeer); ev.Reason != "withdrawn" {
		t.Fatalf("remove after Ctrl-C of provide: reason %q, want withdrawn", ev.Reason)
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	if ev := watchLine(t, w, control.EventRemove, bPeer); ev.Reason != "unhealthy" {
		t.Fatalf("remove after SIGKILL of provide: reason %q, want unhealthy", ev.Reason)
	}
	w.cmd.Process.Signal(syscall.SIGINT)
	if code := w.wait(t); code != 0 {
		t.Fatalf("find --watch after Ctrl-C: exit %d, stderr:\n%s", code, w.stderr)
	}
}

// TestDaemonWatch: find --watch through the daemon (POST /v1/watch)
// prints the same events, as text.
func TestDaemonWatch(t *testing.T) {
	boot := startRegistry(t)
	dir := shortDataDir(t)
	startDaemon(t, "daemon", "--bootstrap", boot, "--data-dir", dir, "--listen", loopback)
	w := start(t, "find", "DatabaseService", "--watch", "--data-dir", dir)
	p, peer := providedBy(t, boot, "DatabaseService")
	w.line(t, "upsert line", func(l string) bool {
		return strings.HasPrefix(l, "upsert "+peer+" DatabaseService addrs=/ip4/127.0.0.1/")
	})
	p.cmd.Process.Signal(syscall.SIGINT)
	w.line(t, "remove line", func(l string) bool { return l == "remove "+peer+" DatabaseService reason=withdrawn" })
	w.cmd.Process.Signal(syscall.SIGINT)
	if code := w.wait(t); code != 0 {
		t.Fatalf("find --watch via the daemon after Ctrl-C: exit %d, stderr:\n%s", code, w.stderr)
	}
}

// TestCLIWatchLimits: the registry's watch limits are flags; a watch over
// --max-watchers is refused and the watcher says why on stderr, and a
// negative limit is a usage error.
func TestCLIWatchLimits(t *testing.T) {
	_, boot := registryAt(t, filepath.Join(t.TempDir(), "reg"), loopback, "--max-watchers", "1")
	_, peer := providedBy(t, boot, "DatabaseService")
	first := start(t, "find", "DatabaseService", "--watch", "--json", "--bootstrap", boot)
	watchLine(t, first, control.EventUpsert, peer)
	second := start(t, "find", "DatabaseService", "--watch", "--json", "--bootstrap", boot)
	waitFor(t, 30*time.Second, "the second watcher reports the refusal", func() bool {
		return strings.Contains(second.stderr.String(), "too many watchers")
	})
	_, stderr, code := runCLI(t, "find", "DatabaseService", "--watch", "--bootstrap", boot, "--watch-queue", "-1")
	if code != exitUsage || !strings.Contains(stderr, "watch limits must not be negative") {
		t.Fatalf("--watch-queue -1: exit %d, stderr:\n%s", code, stderr)
	}
}
